"""Embedded SCTs under mutation: a changed SCT byte never verifies, and a bad SCT list is a reason, never a crash.

The oracle: the certificate is re-signed by its CA after the SCT list is changed, so only the SCT check stands
between the mutation and acceptance (sigstore-go pkg/verify/sct.go VerifySignedCertificateTimestamp).
"""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from hypothesis import example, given

from provider.config import PublicKey
from provider.verifiers.sct import SCTError, verify_embedded_sct
from tests import fulcio
from tests.fuzz.strategies_signed import FUZZ, flip, masks, positions

SIGSTORE = fulcio.Sigstore()
LEAF = fulcio.leaf(SIGSTORE.intermediate, "dev@team.example", SIGSTORE.ct_log)
CT_KEYS = (PublicKey("ct.pub", SIGSTORE.ct_log.public_key()),)
SCT_VALUE = LEAF.cert.extensions.get_extension_for_oid(fulcio.SCT_LIST_OID).value.public_bytes()


def with_sct_value(value: bytes) -> x509.Certificate:
    """LEAF with its SCT list extension replaced by `value`, re-signed by the same CA."""
    assert SIGSTORE.intermediate is not None
    builder = (x509.CertificateBuilder().subject_name(LEAF.cert.subject).issuer_name(LEAF.cert.issuer)
               .public_key(LEAF.cert.public_key()).serial_number(LEAF.cert.serial_number)
               .not_valid_before(LEAF.cert.not_valid_before_utc).not_valid_after(LEAF.cert.not_valid_after_utc))
    for extension in LEAF.cert.extensions:
        if extension.oid == fulcio.SCT_LIST_OID:
            builder = builder.add_extension(x509.UnrecognizedExtension(fulcio.SCT_LIST_OID, value), critical=False)
        else:
            builder = builder.add_extension(extension.value, critical=extension.critical)
    return builder.sign(SIGSTORE.intermediate.key, hashes.SHA256())


def sct_verifies(cert: x509.Certificate) -> bool:
    assert SIGSTORE.intermediate is not None
    try:
        verify_embedded_sct(cert, SIGSTORE.intermediate.cert, CT_KEYS)
    except SCTError as exc:
        assert str(exc)
        return False
    return True


def test_the_original_verifies_and_a_rebuilt_copy_too() -> None:
    assert sct_verifies(LEAF.cert)
    assert sct_verifies(with_sct_value(SCT_VALUE))


@FUZZ
@given(positions, masks)
@example(index=49, mask=1)  # the declared hash algorithm, SHA-256 (4) -> SHA-384 (5): not covered by the signature
@example(index=39, mask=0x80)  # the timestamp's top byte: a year past 9999
def test_a_changed_sct_byte_never_verifies(index: int, mask: int) -> None:
    try:
        mutated = with_sct_value(flip(SCT_VALUE, index, mask))
    except ValueError:
        pytest.skip("cryptography refuses to encode this extension value")
    assert not sct_verifies(mutated)
