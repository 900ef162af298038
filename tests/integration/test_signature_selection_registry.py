"""maxSignatures through a real registry: SBOM referrers listed before a notation signature do not push it out."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from provider.config import build_config
from provider.devkit import notation
from provider.devkit.layout import LayoutWriter
from provider.engine import Engine
from provider.facts import facts_schema
from tests.helpers import write_yaml
from tests.registry import RegistryServer

OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def test_sbom_referrers_do_not_count_towards_max_signatures(tmp_path: Path, registry: RegistryServer) -> None:
    writer = LayoutWriter(tmp_path / "staging", "repo")
    image = writer.add_image("v1", b"with many referrers")
    referrers = []
    empty = writer.add_blob(b"{}", "application/vnd.oci.empty.v1+json")
    for n in range(20):
        sbom = writer.add_blob(json.dumps({"spdxVersion": "SPDX-2.3", "n": n}).encode(), "application/spdx+json")
        referrers.append(writer.add_manifest({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/spdx+json", "config": empty,
            "layers": [sbom], "subject": notation.target_of(image)}))
    identity = notation.identity_with_intermediate("ec-256")
    referrers.append(notation.attach(writer, image, notation.sign(notation.target_of(image), identity)))
    # docker-registry has no referrers API: the referrers tag lists them, the SBOMs first.
    writer.add_manifest({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": referrers},
                        image["digest"].replace(":", "-"), OCI_INDEX)
    registry.push_layout(writer.path, "team/sboms")
    (tmp_path / "root.pem").write_bytes(identity.root_pem)
    policy = {"version": "1.0", "trustPolicies": [{"name": "p", "registryScopes": ["*"],
                                                   "signatureVerification": {"level": "strict"},
                                                   "trustStores": ["ca:acme"], "trustedIdentities": ["*"]}]}
    data = {"stores": [{"type": "registry", "match": ["*"], "insecure": [registry.host]}],
            "verification": {"maxSignatures": 4},
            "authorities": [{"name": "acme", "notation": {"trustStores": {"ca:acme": ["root.pem"]},
                                                          "trustPolicy": {"inline": policy}}}]}
    engine = Engine(build_config(data, write_yaml(tmp_path / "config.yaml", data)))
    try:
        item = engine.verify([f"{registry.host}/team/sboms:v1"], "t")[0]
    finally:
        engine.shutdown()
    assert not item.error, item.error
    jsonschema.validate(item.value, facts_schema())
    assert item.value["verified"] is True, item.value["reason"]
    assert [s["format"] for s in item.value["signatures"]] == ["notation"]
    assert "signatureLimit" not in item.value
