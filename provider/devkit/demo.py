"""`sigwarden demo`: the seeds' scenarios end to end on loopback — no cluster, no registry, no network.

It makes trust material and small images in a temporary workspace, starts the provider over HTTPS with
mutual TLS as Gatekeeper would call it, and replays kubectl transcripts through the policy harness (real
Rego, real external data over mTLS): kritis-validation-hook, a cosign webhook with a namespace label,
Ratify/AKS notation in audit mode and then in deny mode, and admission on signed vulnerability reports.
"""

from __future__ import annotations

import base64
import json
import signal
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from provider.content import kinds
from provider.devkit import content, cosign, notation
from provider.devkit.kube import deployment
from provider.devkit.layout import LayoutWriter
from provider.devkit.pki import issue, make_ca
from provider.devkit.process import ProviderProcess
from provider.facts import rfc3339
from provider.policy.discovery import shipped_templates
from provider.policy.external import HTTPExternalData
from provider.policy.gatekeeper import PolicySet, parse_constraint
from provider.policy.suite import admit

GATEKEEPER_CN = "gatekeeper-webhook-service.gatekeeper-system.svc"
POD_KINDS = [{"apiGroups": [""], "kinds": ["Pod"]}, {"apiGroups": ["apps"], "kinds": ["Deployment"]}]


@dataclass(frozen=True)
class Step:
    scenario: str
    command: str
    expected: str  # created | denied | warned
    got: str
    output: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def build_workspace(root: Path) -> tuple[Path, dict[str, str]]:
    """Trust material, images and a config under `root`; returns the config path and image references."""
    pki = root / "pki"
    server_ca = make_ca("sigwarden demo CA")
    server_ca.write(pki, "ca")
    issue(server_ca, "sigwarden.sigwarden-system.svc", ("127.0.0.1", "localhost"), server=True).write(pki, "server")
    gatekeeper_ca = make_ca("gatekeeper demo CA")
    gatekeeper_ca.write(pki, "gatekeeper-ca")
    issue(gatekeeper_ca, GATEKEEPER_CN, (GATEKEEPER_CN,), client=True).write(pki, "gatekeeper")

    cosign_key = ec.generate_private_key(ec.SECP256R1())
    (root / "cosign.pub").write_bytes(cosign.public_pem(cosign_key))
    kritis_key = ec.generate_private_key(ec.SECP256R1())
    signer = notation.identity_with_intermediate("rsa-3072", notation.CertSpec("Acme Release Signer"))
    (root / "notation-root.pem").write_bytes(signer.root_pem)

    layouts = root / "layouts"
    images: dict[str, str] = {}
    kritis = LayoutWriter(layouts / "demo.local", "kritis-demo/alpine")
    digest = kritis.add_image("3.11", b"alpine 3.11, attested build")["digest"]
    cosign.sign_image(kritis, digest, "demo.local/kritis-demo/alpine", kritis_key)
    images["attested"] = f"demo.local/kritis-demo/alpine@{digest}"
    LayoutWriter(layouts / "docker.io", "library/alpine").add_image("3.11", b"alpine 3.11, nobody signed this")
    images["unsigned"] = "alpine:3.11"
    shop = LayoutWriter(layouts / "demo.local", "shop/web")
    cosign.sign_image(shop, shop.add_image("1.0", b"web 1.0")["digest"], "demo.local/shop/web", cosign_key)
    images["cosign"] = "demo.local/shop/web:1.0"
    tampered = LayoutWriter(layouts / "demo.local", "shop/payments")
    original = tampered.add_image("1.0", b"payments 1.0")["digest"]
    signature = cosign.sign_image(tampered, original, "demo.local/shop/payments", cosign_key)
    altered = tampered.add_image("1.0", b"payments 1.0 with a backdoor")["digest"]
    tampered.tag(signature, altered.replace(":", "-") + ".sig")  # the old signature copied next to the new tag
    images["tampered"] = "demo.local/shop/payments:1.0"
    api = LayoutWriter(layouts / "demo.local", "aks/api")
    descriptor = api.add_image("2.0", b"api 2.0")
    notation.attach(api, descriptor, notation.sign(notation.target_of(descriptor), signer, "jws"), "jws")
    images["notation"] = "demo.local/aks/api:2.0"

    images.update(_scanned_images(layouts, cosign_key, root))

    trust_policy = {"version": "1.0", "trustPolicies": [{
        "name": "acme-images", "registryScopes": ["*"], "signatureVerification": {"level": "strict"},
        "trustStores": ["ca:acme"],
        "trustedIdentities": ["x509.subject: C=US, ST=WA, O=Acme, CN=Acme Release Signer"]}]}
    config = {
        "server": {"listen": f"127.0.0.1:{_free_port()}", "metricsListen": f"127.0.0.1:{_free_port()}",
                   "tls": {"cert": "pki/server.crt", "key": "pki/server.key", "clientCA": "pki/gatekeeper-ca.crt",
                           "clientNames": [GATEKEEPER_CN]}},
        "stores": [{"type": "oci-layout", "path": "layouts", "match": ["*"]}],
        "authorities": [
            # As `sigwarden import kritis` writes it: kritis checks the repository a signature names, not the tag.
            {"name": "kritis-authority", "attestation": {
                "publicKeyData": base64.b64encode(cosign.public_pem(kritis_key)).decode(), "publicKeyId": "kms-1",
                "signedIdentity": {"type": "matchRepository"}}},
            {"name": "shop-cosign", "purposes": ["image"], "cosign": {"publicKeys": [{"file": "cosign.pub"}]}},
            {"name": "scanner", "purposes": ["vulnerability-report", "sbom", "vex"],
             "cosign": {"publicKeys": [{"file": "scanner.pub"}]}},
            {"name": "release-ca", "notation": {"trustStores": {"ca:acme": ["notation-root.pem"]},
                                                "trustPolicy": {"inline": trust_policy}}},
        ],
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path, images


def _scanned_images(layouts: Path, release: ec.EllipticCurvePrivateKey, root: Path) -> dict[str, str]:
    """Images with Trivy reports attested by a scanner key (purposes: vulnerability-report, sbom, vex)."""
    scanner = ec.generate_private_key(ec.SECP256R1())
    (root / "scanner.pub").write_bytes(cosign.public_pem(scanner))
    now = rfc3339()
    reports = {"search": ([("CVE-2024-0001", "LOW", "1.1")], scanner),
               "cart": ([("CVE-2024-1111", "CRITICAL", "2.0"), ("CVE-2024-2222", "HIGH", "")], scanner),
               "checkout": ([("CVE-2024-0001", "LOW", "1.1")], release)}  # the build key vouching for a scan
    images = {}
    for name, (findings, key) in reports.items():
        writer = LayoutWriter(layouts / "demo.local", f"shop/{name}")
        digest = writer.add_image("1.0", f"{name} 1.0".encode())["digest"]
        cosign.sign_image(writer, digest, f"demo.local/shop/{name}", release)
        predicate = content.vuln_predicate(content.trivy_report(findings, now), now)
        content.attest(writer, digest, [(key, kinds.VULN_PREDICATE, predicate)])
        images[f"scanned-{name}"] = f"demo.local/shop/{name}:1.0"
    return images


def _content_constraint() -> dict[str, Any]:
    return {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sImageContent",
            "metadata": {"name": "scanned-images"},
            "spec": {"enforcementAction": "deny", "match": {"kinds": POD_KINDS, "namespaces": ["shop"]},
                     "parameters": {"requireVulnerabilityReport": True, "vulnerabilityReportAuthorities": ["scanner"],
                                    "maximumFixableSeverity": "HIGH", "maximumUnfixableSeverity": "CRITICAL",
                                    "maximumReportAge": "168h"}}}


def _constraint(name: str, action: str, match: dict[str, Any], authorities: list[str]) -> dict[str, Any]:
    return {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sSignedImages", "metadata": {"name": name},
            "spec": {"enforcementAction": action, "match": {"kinds": POD_KINDS, **match},
                     "parameters": {"authorities": authorities, "requireAll": True}}}






def scenarios(images: dict[str, str]) -> list[tuple[str, dict[str, Any], list[tuple[str, str, str, str]]]]:
    """(title, constraint, [(namespace, deployment name, image, expected)])."""
    return [
        ("kritis-validation-hook: GenericAttestationPolicy in namespace default (deny)",
         _constraint("kritis-attested-images", "deny", {"namespaces": ["default"]}, ["kritis-authority"]),
         [("default", "test-denied", images["unsigned"], "denied"),
          ("default", "test-allow", images["attested"], "created")]),
        ("cosign webhook: namespaces labelled signed=required (deny)",
         _constraint("signed-required", "deny", {"namespaceSelector": {"matchLabels": {"signed": "required"}}},
                     ["shop-cosign"]),
         [("shop", "web", images["cosign"], "created"),
          ("shop", "payments", images["tampered"], "denied"),
          ("sandbox", "scratch", images["unsigned"], "created")]),
        ("Ratify / AKS Image Integrity: notation, audit first (dryrun)",
         _constraint("notation-audit", "dryrun", {}, ["release-ca"]),
         [("default", "api", images["notation"], "created"),
          ("default", "legacy", images["unsigned"], "audited")]),
        ("Ratify / AKS Image Integrity: notation, then deny",
         _constraint("notation-deny", "deny", {}, ["release-ca"]),
         [("default", "api", images["notation"], "created"),
          ("default", "legacy", images["unsigned"], "denied")]),
        ("Signed scan reports: K8sImageContent in namespace shop (deny)",
         _content_constraint(),
         [("shop", "search", images["scanned-search"], "created"),
          ("shop", "cart", images["scanned-cart"], "denied"),
          ("shop", "checkout", images["scanned-checkout"], "denied")]),
    ]


def replay(root: Path, url: str, images: dict[str, str]) -> list[Step]:
    external = HTTPExternalData(url, cert=(str(root / "pki/gatekeeper.crt"), str(root / "pki/gatekeeper.key")),
                                ca=str(root / "pki/ca.crt"))
    namespaces = {"shop": {"kind": "Namespace", "metadata": {"name": "shop", "labels": {"signed": "required"}}},
                  "sandbox": {"kind": "Namespace", "metadata": {"name": "sandbox"}},
                  "default": {"kind": "Namespace", "metadata": {"name": "default"}}}
    steps = []
    templates = shipped_templates()
    for title, constraint, cases in scenarios(images):
        print(f"\n== {title}")
        policies = PolicySet(templates, [parse_constraint(constraint, title)], external, namespaces)
        for namespace, name, image, expected in cases:
            command = f"kubectl -n {namespace} create deployment {name} --image={image}"
            answer = admit(policies, deployment(name, image, namespace))
            output = answer.kubectl()
            got = "denied" if not answer.allowed else "audited" if answer.dryrun else "created"
            print(f"$ {command}\n{output}")
            if answer.dryrun:
                for violation in answer.dryrun:
                    print(f"  (audit reports: [{violation.constraint.name}] {violation.message})")
            steps.append(Step(title.split(":")[0], command, expected, got, output))
    return steps


def _summary(steps: list[Step]) -> bool:
    print(f"\n{'SCENARIO':<32} {'DEPLOYMENT':<60} {'EXPECTED':<9} {'GOT':<9}")
    ok = True
    for step in steps:
        mark = "ok" if step.expected == step.got else "MISMATCH"
        ok &= step.expected == step.got
        target = step.command.split("create deployment ", 1)[1][:59]
        print(f"{step.scenario:<32} {target:<60} {step.expected:<9} {step.got:<9} {mark}")
    return ok


def _stop_on_sigterm(signum: int, frame: object) -> None:
    # SystemExit unwinds through the `finally` blocks: the provider is stopped and the workspace (private keys
    # included) removed, as for Ctrl-C; 143 is the shell's code for a process ended by SIGTERM.
    raise SystemExit(128 + signum)


def run_demo(serve: bool = False) -> int:
    """0 when every decision is as expected, 1 otherwise; SIGTERM and SIGINT stop it cleanly (143, 130; 0 for
    Ctrl-C while `--serve` keeps the provider running, its documented way to stop)."""
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        return _run(serve)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(serve: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="sigwarden-demo-") as tmp:
        root = Path(tmp)
        config_path, images = build_workspace(root)
        print(f"workspace {root}: a cosign key pair, a notation CA and signing certificate with a trust policy,")
        print("a kritis PKIX key, a server certificate and a Gatekeeper-like client certificate; an OCI layout")
        print("store with attested, cosign-signed, notation-signed, unsigned and tampered images, and images")
        print("with Trivy reports attested by a scanner key that may vouch for reports but not sign images.")
        server = yaml.safe_load(config_path.read_text())["server"]
        process = ProviderProcess(config_path, int(server["listen"].rsplit(":", 1)[1]),
                                  int(server["metricsListen"].rsplit(":", 1)[1]))
        try:
            process.wait_ready()
            url = process.url
            print(f"provider: {url} (TLS; client certificate required and pinned to {GATEKEEPER_CN})")
            ok = _summary(replay(root, url, images))
            print("\nall decisions as expected" if ok else "\nSOME DECISIONS DIFFER FROM THE EXPECTED ONES")
            if serve:
                _keep_serving(root, url, images)
            return 0 if ok else 1
        finally:
            process.stop()


def _keep_serving(root: Path, url: str, images: dict[str, str]) -> None:
    pki = root / "pki"
    body = {"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderRequest",
            "request": {"keys": [images["cosign"], images["unsigned"]]}}
    print("\nthe provider keeps running; try it (Ctrl-C to stop):")
    print(f"  curl --cacert {pki}/ca.crt --cert {pki}/gatekeeper.crt --key {pki}/gatekeeper.key \\\n"
          f"       -H 'Content-Type: application/json' -d '{json.dumps(body)}' {url}/verify")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
