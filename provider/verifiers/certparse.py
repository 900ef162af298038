"""What Go's crypto/x509 refuses while parsing a certificate and pyca/cryptography still reads.

cosign, notation, tspclient-go, sigstore-go and golang.org/x/crypto/ocsp parse every certificate with Go's
`x509.ParseCertificate`; a certificate it refuses cannot vouch for anything there, so it cannot here either.
"""

from __future__ import annotations

import warnings

from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning

# check_serial_numbers refuses a negative serial with a reason; cryptography's warning about it would only repeat
# that on stderr. A global filter, set once: warnings.catch_warnings is not thread-safe.
warnings.filterwarnings("ignore", "Parsed a serial number which wasn't positive", CryptographyDeprecationWarning)


def check_serial_numbers(*certificates: x509.Certificate) -> None:
    """Go's parser.go (since Go 1.23) refuses a negative serial number (RFC 5280 4.1.2.2); a zero serial it
    still reads, and so does this."""
    for certificate in certificates:
        if certificate.serial_number < 0:
            raise ValueError(f"serial number {certificate.serial_number} is negative (RFC 5280 4.1.2.2)")
