"""Expiry metrics for trust material and TLS files, and verified items by authority."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pysequoia
from prometheus_client import generate_latest

from provider.devkit.pki import issue, make_ca
from provider.engine import Item
from provider.metrics import Metrics
from provider.state import ProviderState
from tests.helpers import VECTORS, metric_value, write_yaml


def test_trust_material_and_tls_expiry_are_exported_and_follow_reloads(tmp_path: Path) -> None:
    corp = make_ca("corp root", days=400)
    tsa = make_ca("tsa root", days=30)
    (tmp_path / "corp.pem").write_bytes(corp.cert_pem)
    (tmp_path / "tsa.pem").write_bytes(tsa.cert_pem)
    notation_root = (VECTORS / "notation/truststore/NotationTestRoot.pem").read_bytes()
    (tmp_path / "notation.pem").write_bytes(notation_root)
    server_ca, client_ca = make_ca("server"), make_ca("gatekeeper", days=90)
    leaf = issue(server_ca, "sigwarden", ("localhost",), server=True, days=20)
    cert, key = leaf.write(tmp_path, "server")
    (tmp_path / "client-ca.pem").write_bytes(client_ca.cert_pem)
    policy = json.loads((VECTORS / "notation/ratify-valid_trust_policy.json").read_text())
    signer = pysequoia.Tsk.generate("ci <ci@example.org>")
    expires = datetime.datetime.now(datetime.UTC).replace(microsecond=0) + datetime.timedelta(days=20)
    pgp = signer.extract_certificate().set_expiration(expiration=expires, certifier=signer.certifier())
    config = {
        "server": {"tls": {"cert": str(cert), "key": str(key), "clientCA": "client-ca.pem"}},
        "authorities": [
            {"name": "corp", "cosign": {"pki": {"roots": ["corp.pem"]}}},
            {"name": "release", "notation": {"trustStores": {"ca:certs": ["notation.pem"], "tsa:ts": ["tsa.pem"]},
                                             "trustPolicy": {"inline": policy}}},
            {"name": "kms", "attestation": {"lookaside": "https://lookaside.example/sigstore",
                                            "publicKeys": [{"keyType": "PGP", "keyId": "ci-key",
                                                            "asciiArmoredPgpPublicKey": str(pgp)}]}},
        ],
    }
    path = write_yaml(tmp_path / "config.yaml", config)
    state = ProviderState(path, Metrics())
    state.load()
    text = generate_latest(state.metrics.registry).decode()
    name = "sigwarden_trust_certificate_expiry_timestamp_seconds"
    assert metric_value(text, name, {"authority": "corp", "store": "cosign.pki", "subject": "CN=corp root"}) == \
        corp.cert.not_valid_after_utc.timestamp()
    assert metric_value(text, name, {"authority": "release", "store": "notation.tsa:ts"}) == \
        tsa.cert.not_valid_after_utc.timestamp()
    assert metric_value(text, name, {"authority": "release", "store": "notation.ca:certs"}) > 0
    assert metric_value(text, name, {"authority": "kms", "store": "attestation.pgp", "subject": "ci-key"}) == \
        expires.timestamp()
    expiry = "sigwarden_certificate_expiry_timestamp_seconds"
    assert metric_value(text, expiry, {"kind": "serving"}) == leaf.cert.not_valid_after_utc.timestamp()
    assert metric_value(text, expiry, {"kind": "client-ca"}) == client_ca.cert.not_valid_after_utc.timestamp()

    # A reload without the corp authority drops its series: no alert for trust material no longer used.
    config["authorities"] = config["authorities"][1:]
    write_yaml(path, config)
    state.load()
    text = generate_latest(state.metrics.registry).decode()
    assert metric_value(text, name, {"authority": "corp"}) == 0
    assert metric_value(text, name, {"authority": "release", "store": "notation.tsa:ts"}) > 0
    assert state.runtime is not None
    state.runtime.engine.shutdown()


def test_verified_items_are_counted_per_authority() -> None:
    metrics = Metrics()
    items = [Item("x", plain={"verified": True, "authorities": ["a", "b"]}),
             Item("y", plain={"verified": False, "authorities": ["b"]}), Item("z", plain={"verified": True,
                                                                                   "authorities": ["a"]}),
             Item("p", error="TIMEOUT: late"), Item("q", plain="registry/x@sha256:1")]
    metrics.count_verified(item.vouched_by for item in items)
    text = generate_latest(metrics.registry).decode()
    assert metric_value(text, "sigwarden_verified_items_total", {"authority": "a"}) == 2
    assert metric_value(text, "sigwarden_verified_items_total", {"authority": "b"}) == 1
