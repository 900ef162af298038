"""A Ratify config imported and run against a real docker-registry: the imported `oras` store (plain HTTP, as
`useHttp` said) reads notation signatures through the referrers tag, and the Rego constraint decides."""

from __future__ import annotations

from pathlib import Path

import yaml

from provider.cli import main
from provider.config import load_config
from provider.devkit import notation
from provider.devkit.kube import deployment
from provider.devkit.layout import LayoutWriter
from provider.engine import Engine
from provider.policy.external import EngineExternalData
from provider.policy.gatekeeper import PolicySet
from provider.policy.suite import admit
from tests.helpers import write_yaml
from tests.registry import RegistryServer

ROOT = Path(__file__).resolve().parents[2]
AKS = ROOT / "tests/migration/ratify/aks-image-integrity.yaml"
INDEX = "application/vnd.oci.image.index.v1+json"


def push_signed(registry: RegistryServer, staging: Path, repository: str, identity: notation.SigningIdentity) -> str:
    """An image with a notation signature, pushed with the referrers tag docker-registry 2.8 needs."""
    writer = LayoutWriter(staging, repository)
    image = writer.add_image("v1", f"{repository} build".encode())
    signature = notation.attach(writer, image, notation.sign(notation.target_of(image), identity))
    signature["artifactType"] = notation.NOTARY_ARTIFACT_TYPE
    writer.add_manifest({"schemaVersion": 2, "mediaType": INDEX, "manifests": [signature]},
                        image["digest"].replace(":", "-"), INDEX)
    registry.push_layout(writer.path, repository)
    return f"{registry.host}/{repository}:v1"


def test_imported_aks_config_verifies_through_a_real_registry(tmp_path: Path, registry: RegistryServer) -> None:
    release = notation.identity_with_intermediate("rsa-2048")
    stranger = notation.identity_with_intermediate("rsa-2048")
    documents = list(yaml.safe_load_all(AKS.read_text()))
    documents[0]["spec"]["parameters"]["value"] = release.root_pem.decode()  # the user's CA for the sample CA
    documents[1]["spec"]["parameters"] = {"useHttp": True}  # a registry reached over plain HTTP
    source = tmp_path / "ratify.yaml"
    source.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    out = tmp_path / "out"
    assert main(["import", "ratify", "--enforcement-action", "deny", "-o", str(out), str(source)]) == 0
    config = yaml.safe_load((out / "config.yaml").read_text())
    (store,) = config["stores"]
    assert store["insecure"][0].startswith("TODO: the registry hosts to reach over plain HTTP")
    assert main(["config", "check", "--for", "verify", str(out / "config.yaml")]) == 2
    store["insecure"] = [registry.host]
    write_yaml(out / "config.yaml", config)
    assert main(["config", "check", "--for", "verify", str(out / "config.yaml")]) == 0
    good = push_signed(registry, tmp_path / "staging", "team/app", release)
    bad = push_signed(registry, tmp_path / "staging", "team/other", stranger)
    engine = Engine(load_config(out / "config.yaml"))
    try:
        good_facts, bad_facts = (item.value for item in engine.verify([good, bad], "t"))
        policies = PolicySet.from_paths([ROOT / "constraints/templates", out / "kubernetes.yaml"],
                                        EngineExternalData(engine))
        admitted, refused = (admit(policies, deployment("app", image, "default")) for image in (good, bad))
    finally:
        engine.shutdown()
    assert good_facts["verified"] is True and good_facts["authorities"] == ["verifier-notary-inline"]
    assert [s["format"] for s in good_facts["signatures"]] == ["notation"]
    assert bad_facts["verified"] is False
    assert "not produced by a trusted signer" in bad_facts["signatures"][0]["reason"]
    assert admitted.allowed, admitted.kubectl()
    assert f"[ratify-constraint] image {bad} is not attested" in refused.kubectl()
    assert good_facts["isSuccess"] is True  # what Ratify's own templates read
