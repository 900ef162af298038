"""cosign's encrypted private key files (`cosign generate-key-pair`), for signing with a user's own key.

Needs PyNaCl (in the `test` extra). The PEM body is JSON: an scrypt KDF with its salt, a NaCl secretbox
nonce and the ciphertext. The plaintext must be a PKCS#8 private key; cosign rejects SEC1
(`EC PRIVATE KEY`) bodies, and so does this loader.
"""

from __future__ import annotations

import base64
import json

from asn1crypto import keys
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from cryptography.hazmat.primitives.serialization import load_der_private_key
from nacl.exceptions import CryptoError
from nacl.secret import SecretBox

PEM_TYPES = ("ENCRYPTED COSIGN PRIVATE KEY", "ENCRYPTED SIGSTORE PRIVATE KEY")


class KeyFileError(ValueError):
    """The key file cannot be used; the message says why."""


def load_cosign_private_key(pem: bytes, password: bytes) -> PrivateKeyTypes:
    text = pem.decode(errors="replace").strip()
    kind = next((k for k in PEM_TYPES if text.startswith(f"-----BEGIN {k}-----")), None)
    if kind is None:
        raise KeyFileError("not an encrypted cosign or sigstore private key")
    body = text.split(f"-----BEGIN {kind}-----", 1)[1].split(f"-----END {kind}-----", 1)[0]
    try:
        envelope = json.loads(base64.b64decode("".join(body.split())))
        kdf, cipher = envelope["kdf"], envelope["cipher"]
        params = kdf["params"]
        if kdf["name"] != "scrypt" or cipher["name"] != "nacl/secretbox":
            raise KeyFileError(f"unsupported key encryption {kdf['name']}/{cipher['name']}")
        key = Scrypt(salt=base64.b64decode(kdf["salt"]), length=32, n=params["N"], r=params["r"],
                     p=params["p"]).derive(password)
        plaintext = SecretBox(key).decrypt(base64.b64decode(envelope["ciphertext"]),
                                           base64.b64decode(cipher["nonce"]))
    except CryptoError:
        raise KeyFileError("wrong password, or the key file was modified") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise KeyFileError(f"malformed key file: {exc}") from None
    try:
        _ = keys.PrivateKeyInfo.load(plaintext, strict=True).native  # parses only PKCS#8, not SEC1
    except ValueError:
        raise KeyFileError("the decrypted key is not PKCS#8 (cosign rejects SEC1 EC keys)") from None
    return load_der_private_key(plaintext, password=None)
