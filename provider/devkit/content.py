"""Make signed vulnerability reports, SBOMs and VEX documents for tests, policy suites and the demo.

Reports written here follow the tools' output shapes (Trivy JSON inside a cosign vuln predicate, CycloneDX,
OpenVEX); the tests also attach real tool output vendored in tests/vectors/content/.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from provider.content import kinds
from provider.devkit import cosign
from provider.devkit.layout import EMPTY_CONFIG, LayoutWriter
from provider.stores.base import OCI_MANIFEST


def trivy_report(findings: list[tuple[str, str, str]], created: str) -> dict[str, Any]:
    """A Trivy JSON report with one OS-package result: (id, severity, fixed version or "")."""
    vulnerabilities = [{"VulnerabilityID": ident, "PkgName": f"pkg-{n}", "InstalledVersion": "1.0",
                        "FixedVersion": fixed, "Status": "fixed" if fixed else "affected", "Severity": severity}
                       for n, (ident, severity, fixed) in enumerate(findings)]
    return {"SchemaVersion": 2, "CreatedAt": created, "ArtifactType": "container_image",
            "Results": [{"Target": "image", "Class": "os-pkgs", "Type": "alpine",
                         "Vulnerabilities": vulnerabilities}]}


def vuln_predicate(report: dict[str, Any], finished: str, version: str = "v0.50.0") -> dict[str, Any]:
    """The cosign vuln predicate as `trivy image --format cosign-vuln` writes it around a Trivy report."""
    return {"invocation": {"parameters": None, "uri": "", "event_id": "", "builder.id": ""},
            "scanner": {"uri": f"pkg:github/aquasecurity/trivy@{version}", "version": version,
                        "db": {"uri": "", "version": ""}, "result": report},
            "metadata": {"scanStartedOn": finished, "scanFinishedOn": finished}}


def cyclonedx(licenses: dict[str, str], created: str) -> dict[str, Any]:
    """A CycloneDX 1.5 SBOM: one library component per (name, SPDX licence id or expression)."""
    return {"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
            "metadata": {"timestamp": created, "tools": {"components": [{"name": "trivy", "version": "0.50.0"}]}},
            "components": [{"type": "library", "name": name, "version": "1.0", "purl": f"pkg:generic/{name}@1.0",
                            "licenses": [{"expression": licence} if " " in licence else {"license": {"id": licence}}]}
                           for name, licence in licenses.items()]}


def openvex(not_affected: list[str], author: str, created: str, product: str) -> dict[str, Any]:
    """OpenVEX `not_affected` statements about `product` (an OCI purl or a digest, as vexctl writes them)."""
    return {"@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://sigwarden.test/vex/1", "author": author,
            "timestamp": created, "version": 1,
            "statements": [{"vulnerability": {"name": ident}, "products": [{"@id": product}],
                            "status": "not_affected", "justification": "vulnerable_code_not_present"}
                           for ident in not_affected]}


def attest(writer: LayoutWriter, image_digest: str,
           statements: list[tuple[PrivateKeyTypes, str, Any]], subject: str | None = None) -> dict[str, Any]:
    """Attach (key, predicate type, predicate) statements as cosign attestations (`sha256-<hex>.att`).

    `subject` makes the statements claim another digest (a report about a different image).
    """
    envelopes = [cosign.attestation_envelope(key, subject or image_digest, predicate_type, predicate)
                 for key, predicate_type, predicate in statements]
    return cosign.attach_attestations(writer, image_digest, envelopes)


def attach_referrer(writer: LayoutWriter, image: dict[str, Any], document: bytes,
                    artifact_type: str = kinds.SARIF_ARTIFACT, created: str = "") -> dict[str, Any]:
    """Attach a document to `image` (its descriptor) as an OCI referrer, the way `oras attach` does (which
    writes the `org.opencontainers.image.created` annotation: `created`)."""
    layer = writer.add_blob(document, artifact_type)
    config = writer.add_blob(b"{}", EMPTY_CONFIG)
    subject = {k: image[k] for k in ("mediaType", "digest", "size")}
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
                "config": config, "layers": [layer], "subject": subject}
    if created:
        manifest["annotations"] = {"org.opencontainers.image.created": created}
    return writer.add_manifest(manifest)
