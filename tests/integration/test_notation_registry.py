"""Malformed notation referrers served by a real docker-registry never sink the valid signature next to them."""

from __future__ import annotations

import json
from pathlib import Path

from provider.config import build_config
from provider.devkit import notation
from provider.devkit.layout import LayoutWriter
from provider.engine import Engine
from tests.helpers import write_yaml
from tests.registry import RegistryServer
from tests.test_notation_isolation import IDENTITY, MALFORMED, policy

INDEX = "application/vnd.oci.image.index.v1+json"


def test_every_malformed_referrer_is_listed_and_the_valid_one_counts(tmp_path: Path,
                                                                    registry: RegistryServer) -> None:
    writer = LayoutWriter(tmp_path / "staging", "repo")
    image = writer.add_image("v1", b"notation with company")
    target = notation.target_of(image)
    envelopes = [MALFORMED[case](target)[:2] for case in sorted(MALFORMED)]
    envelopes.append((notation.sign(target, IDENTITY, "cose"), "cose"))
    for envelope, kind in envelopes:
        notation.attach(writer, image, envelope, kind)
    # docker-registry 2.8 has no referrers API: publish the referrers tag index, as notation does there.
    referrers = [m for m in json.loads((writer.path / "index.json").read_text())["manifests"]
                 if m.get("artifactType") == notation.NOTARY_ARTIFACT_TYPE]
    writer.add_manifest({"schemaVersion": 2, "mediaType": INDEX, "manifests": referrers},
                        image["digest"].replace(":", "-"), INDEX)
    registry.push_layout(writer.path, "team/notation")
    (tmp_path / "root.pem").write_bytes(IDENTITY.root_pem)
    data = {"server": {"requestDeadline": "10s"},
            "stores": [{"type": "registry", "match": ["*"], "insecure": [registry.host]}],
            "authorities": [{"name": "acme", "notation": {"trustStores": {"ca:acme": [str(tmp_path / "root.pem")]},
                                                          "trustPolicy": {"inline": policy()}}}]}
    engine = Engine(build_config(data, write_yaml(tmp_path / "config.yaml", data)))
    try:
        item = engine.verify([f"{registry.host}/team/notation:v1"], "t")[0]
    finally:
        engine.shutdown()
    assert not item.error, item.error
    facts = item.value
    assert facts["verified"] is True and facts["authorities"] == ["acme"]
    assert len(facts["signatures"]) == len(envelopes)
    rejected = [s for s in facts["signatures"] if not s["verified"]]
    assert len(rejected) == len(MALFORMED)
    assert all(s["reason"].startswith("malformed signature envelope: ") for s in rejected)
