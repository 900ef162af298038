"""Per-signature verification cost (ECDSA P-256, RSA-3072, keyless with chain + SET) against the floor:
the raw `cryptography` verify call of the same signature. Prints microseconds per signature and the ratio."""

from __future__ import annotations

import base64
import json
import sys
import tempfile
import timeit
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from provider.config import build_config
from provider.devkit import cosign
from provider.verifiers.signers import SignedBlob, authenticate
from tests.helpers import VECTORS, write_yaml

ROUNDS = 300


def per_call(fn: object) -> float:
    timer = timeit.Timer(fn)  # type: ignore[arg-type]
    return min(timer.repeat(repeat=5, number=ROUNDS)) / ROUNDS * 1e6


def keyed_case(tmp: Path, name: str, key: object) -> tuple[float, float]:
    body = cosign.payload("sha256:" + "a" * 64, "bench.example/app")
    signature = cosign.sign(key, body)  # type: ignore[arg-type]
    (tmp / f"{name}.pub").write_bytes(cosign.public_pem(key))  # type: ignore[arg-type]
    data = {"authorities": [{"name": name, "cosign": {"publicKeys": [f"{name}.pub"]}}]}
    settings = build_config(data, write_yaml(tmp / f"{name}.yaml", data)).authorities[0].cosign
    blob = SignedBlob(body, signature)
    public = key.public_key()  # type: ignore[attr-defined]
    if isinstance(public, ec.EllipticCurvePublicKey):
        def raw() -> None:
            public.verify(signature, body, ec.ECDSA(hashes.SHA256()))
    else:
        def raw() -> None:
            public.verify(signature, body, padding.PKCS1v15(), hashes.SHA256())
    return per_call(lambda: authenticate(blob, name, settings, "")), per_call(raw)


def keyless_case(tmp: Path) -> tuple[float, float]:
    vector = VECTORS / "containers-image/dir-img-cosign-fulcio-rekor-valid/signature-1"
    layer = json.loads(vector.read_bytes()[len(b"\x00sigstore-json\n"):])
    notes = layer["annotations"]
    body = base64.b64decode(layer["payload"])
    signature = base64.b64decode(notes["dev.cosignproject.cosign/signature"])
    data = {"authorities": [{"name": "ci", "cosign": {"keyless": {
        "fulcioRoots": [str(VECTORS / "containers-image/fulcio_v1.crt.pem")],
        "rekorKeys": [str(VECTORS / "containers-image/rekor.pub")],
        "identities": [{"subject": "mitr@redhat.com"}]}}}]}
    settings = build_config(data, write_yaml(tmp / "keyless.yaml", data)).authorities[0].cosign
    blob = SignedBlob(body, signature, notes["dev.sigstore.cosign/certificate"], notes["dev.sigstore.cosign/chain"],
                      notes["dev.sigstore.cosign/bundle"])
    authenticate(blob, "ci", settings, "")  # must verify, or the number means nothing
    from cryptography import x509

    public = x509.load_pem_x509_certificate(notes["dev.sigstore.cosign/certificate"].encode()).public_key()
    return (per_call(lambda: authenticate(blob, "ci", settings, "")),
            per_call(lambda: public.verify(signature, body, ec.ECDSA(hashes.SHA256()))))


def main() -> None:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        cases = {
            "ecdsa-p256": keyed_case(tmp, "ecdsa", ec.generate_private_key(ec.SECP256R1())),
            "rsa-3072": keyed_case(tmp, "rsa", rsa.generate_private_key(65537, 3072)),
            "keyless chain+SET": keyless_case(tmp),
        }
    print(f"{'signature':<20} {'sigwarden us':>13} {'raw verify us':>14} {'ratio':>7}")
    for label, (ours, floor) in cases.items():
        print(f"{label:<20} {ours:>13.1f} {floor:>14.1f} {ours / floor:>7.2f}")


if __name__ == "__main__":
    main()
