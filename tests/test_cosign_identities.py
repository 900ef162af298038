"""Certificate identities with cosign's meaning: cosign pkg/cosign/verify.go CheckCertificatePolicy (and
policy-controller, which calls it). Subject and issuer regexps are Go regexps (RE2 syntax) tried with MatchString,
an unanchored search; a subject is tried against every SAN. The identities are loaded through the config, as a
user writes them, and checked against real certificates.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from provider.cli import main
from provider.config import ConfigError, Identity, load_config
from provider.devkit.pki import make_ca
from provider.verifiers.certificates import (
    FULCIO_ISSUER_V2,
    FULCIO_OTHERNAME,
    certificate_issuer,
    certificate_sans,
    identity_problem,
)
from tests.helpers import VECTORS, write_yaml

TABLE = json.loads((VECTORS / "cosign" / "verify_test_identities.json").read_text())
ISSUER = TABLE["subjects"]["oidcIssuer"]


def utf8(text: str) -> bytes:
    raw = text.encode()
    assert len(raw) < 128
    return bytes([0x0C, len(raw)]) + raw


def leaf(dns: tuple[str, ...] = (), emails: tuple[str, ...] = (), ips: tuple[str, ...] = (),
         uris: tuple[str, ...] = (), other_name: str = "", issuer: str = ISSUER) -> x509.Certificate:
    """A code-signing leaf like Fulcio's: the given SANs and the OIDC issuer extension (v2, a DER UTF8String)."""
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [*(x509.DNSName(d) for d in dns), *(x509.RFC822Name(e) for e in emails),
                                     *(x509.IPAddress(ipaddress.ip_address(i)) for i in ips),
                                     *(x509.UniformResourceIdentifier(u) for u in uris)]
    if other_name:  # cosign's test: an OtherName SAN replaces the others, and the extension is critical
        names = [x509.OtherName(FULCIO_OTHERNAME, utf8(other_name))]
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ca")])).public_key(key.public_key())
               .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(minutes=10))
               .add_extension(x509.UnrecognizedExtension(FULCIO_ISSUER_V2, utf8(issuer)), critical=False))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=bool(other_name))
    return builder.sign(key, hashes.SHA256())


def identities(tmp_path: Path, entries: list[dict[str, str]] | None) -> tuple[Identity, ...]:
    """The identities as `authorities[].cosign.keyless.identities` (or pki, which may have none) loads them."""
    root = tmp_path / "root.pem"
    root.write_bytes(make_ca("fulcio").cert_pem)
    cosign: dict[str, Any] = ({"keyless": {"fulcioRoots": [str(root)], "identities": entries}} if entries
                              else {"pki": {"roots": [str(root)]}})
    config = load_config(write_yaml(tmp_path / "config.yaml", {"authorities": [{"name": "ci", "cosign": cosign}]}))
    trust = config.authorities[0].cosign
    return trust.keyless.identities if trust.keyless else trust.pki.identities


UPSTREAM_KEYS = {"Subject": "subject", "Issuer": "issuer", "SubjectRegExp": "subjectRegExp",
                 "IssuerRegExp": "issuerRegExp"}


# cosign pkg/cosign/verify_test.go, TestValidateAndUnpackCertWithIdentities: every row, as vendored.
@pytest.mark.parametrize("row", TABLE["tests"], ids=[row["comment"] for row in TABLE["tests"]])
def test_upstream_identity_table(tmp_path: Path, row: dict[str, Any]) -> None:
    sans = row["sans"]
    cert = leaf(tuple(sans.get("dnsNames", ())), tuple(sans.get("emailAddresses", ())),
                tuple(sans.get("ipAddresses", ())), tuple(sans.get("uris", ())), sans.get("otherName", ""))
    entries = [{UPSTREAM_KEYS[k]: v for k, v in identity.items()} for identity in row["identities"] or []]
    want = row["wantErrSubstring"]
    if entries and not any("Subject" in k for identity in row["identities"] for k in identity):
        # sigwarden differs on purpose: an identity must name its subject (docs/migrating.md).
        with pytest.raises(ConfigError, match=r"identities\[0\]: needs subject or subjectRegExp"):
            identities(tmp_path, entries)
        return
    if want.startswith("malformed"):
        # cosign fails the verification when it meets the pattern; sigwarden refuses it when the config loads.
        field = "subjectRegExp" if "subject" in want else "issuerRegExp"
        with pytest.raises(ConfigError, match=rf"identities\[0\]\.{field}: invalid regular expression"):
            identities(tmp_path, entries)
        return
    problem = identity_problem(identities(tmp_path, entries), certificate_sans(cert), certificate_issuer(cert))
    assert (problem == "") is (want == ""), problem


WORKFLOW = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
ACTIONS = "https://token.actions.githubusercontent.com"

# Differential rows: (rule, identity as written, the certificate's SANs, issuer, cosign accepts).
ROWS = [
    # verify.go CheckCertificatePolicy: regexp.MatchString is a search, not a whole-string match.
    ("MatchString unanchored prefix", {"subjectRegExp": "^https://github.com/acme/", "issuer": ACTIONS},
     (WORKFLOW,), ACTIONS, True),
    ("MatchString unanchored inside", {"subjectRegExp": "acme", "issuer": ACTIONS}, (WORKFLOW,), ACTIONS, True),
    ("MatchString anchored both ends", {"subjectRegExp": "^https://github.com/acme/$", "issuer": ACTIONS},
     (WORKFLOW,), ACTIONS, False),
    ("MatchString unanchored issuer", {"subject": WORKFLOW, "issuerRegExp": "githubusercontent"},
     (WORKFLOW,), ACTIONS, True),
    ("MatchString unanchored lookalike", {"subjectRegExp": "^https://github.com/acme/"},
     ("https://github.com/acme-evil/x",), ACTIONS, False),
    # verify.go CheckCertificatePolicy: every SAN is tried (GetSubjectAlternateNames), exact and regexp alike.
    ("every SAN, exact", {"subject": "ci@acme.example"}, ("build.acme.example", "ci@acme.example"), ACTIONS, True),
    ("every SAN, regexp", {"subjectRegExp": "^ci@acme\\.example$"}, ("https://acme.example/ci", "ci@acme.example"),
     ACTIONS, True),
    ("no SAN matches", {"subject": "ci@acme.example"}, ("https://acme.example/ci",), ACTIONS, False),
    # RE2 syntax as Go reads it: \z ends the text, Unicode classes.
    ("RE2 \\z", {"subjectRegExp": "@acme\\.example\\z"}, ("ci@acme.example",), ACTIONS, True),
    ("RE2 POSIX class", {"subjectRegExp": "^[[:alpha:]]+@acme\\.example$"}, ("ci@acme.example",), ACTIONS, True),
    ("issuer mismatch", {"subjectRegExp": "acme", "issuer": "https://accounts.google.com"}, (WORKFLOW,),
     ACTIONS, False),
]


def split(sans: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    return {"emails": tuple(s for s in sans if "@" in s and "://" not in s),
            "uris": tuple(s for s in sans if "://" in s),
            "dns": tuple(s for s in sans if "@" not in s and "://" not in s)}


@pytest.mark.parametrize(("rule", "identity", "sans", "issuer", "accepted"), ROWS, ids=[r[0] for r in ROWS])
def test_identities_match_as_cosign(tmp_path: Path, rule: str, identity: dict[str, str], sans: tuple[str, ...],
                                    issuer: str, accepted: bool) -> None:
    cert = leaf(**split(sans), issuer=issuer)
    problem = identity_problem(identities(tmp_path, [identity]), certificate_sans(cert), certificate_issuer(cert))
    assert (problem == "") is accepted, problem


@pytest.mark.parametrize(("entry", "field", "problem"), [
    # Perl/Python syntax that RE2 (and so Go, and cosign) refuses.
    ({"subjectRegExp": "(?<=acme)/app"}, "subjectRegExp", "invalid regular expression (RE2 syntax"),
    ({"subjectRegExp": "acme\\Z"}, "subjectRegExp", "invalid regular expression (RE2 syntax"),
    ({"subject": "a", "issuerRegExp": "(a"}, "issuerRegExp", "missing )"),
    # An exact value and a regexp for one field: cosign's CheckCertificatePolicy would drop the exact one.
    ({"subject": "a", "subjectRegExp": "a"}, "subjectRegExp", "give subject or subjectRegExp, not both"),
    ({"subject": "a", "issuer": ACTIONS, "issuerRegExp": "x"}, "issuerRegExp", "give issuer or issuerRegExp, not both"),
])
def test_config_refuses_what_go_would_not_compile(tmp_path: Path, entry: dict[str, str], field: str,
                                                  problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        identities(tmp_path, [entry])
    message = str(error.value)
    assert f"authorities[0].cosign.keyless.identities[0].{field}: " in message and problem in message
    assert "\n" not in message


def test_config_check_warns_about_unanchored_identity_patterns(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root.pem"
    root.write_bytes(make_ca("fulcio").cert_pem)
    config = write_yaml(tmp_path / "config.yaml", {"authorities": [{"name": "ci", "cosign": {"keyless": {
        "fulcioRoots": [str(root)],
        "identities": [{"subjectRegExp": "^https://github.com/acme/", "issuerRegExp": f"^{ACTIONS}$"}]}}}]})
    assert main(["config", "check", "--for", "verify", str(config)]) == 0
    out = capsys.readouterr()
    text = out.out + out.err
    assert ("authorities[0] (ci).cosign.keyless.identities[0].subjectRegExp '^https://github.com/acme/' is not "
            "anchored at the end: as in cosign, it is a search and matches wherever it occurs in a value (also in "
            "any value that merely starts with it); write ^…$ to match whole values") in text
    assert "issuerRegExp" not in text


@pytest.mark.parametrize(("pattern", "where"), [
    ("https://github\\.com/acme/.*", "at the start and at the end"),
    (".*@acme\\.example$", "at the start"),
    ("\\Aci@acme\\.example\\z", ""),
])
def test_config_check_says_which_end_is_open(tmp_path: Path, capsys: pytest.CaptureFixture[str], pattern: str,
                                             where: str) -> None:
    root = tmp_path / "root.pem"
    root.write_bytes(make_ca("fulcio").cert_pem)
    config = write_yaml(tmp_path / "config.yaml", {"authorities": [{"name": "ci", "cosign": {"keyless": {
        "fulcioRoots": [str(root)], "identities": [{"subjectRegExp": pattern}]}}}]})
    assert main(["config", "check", "--for", "verify", str(config)]) == 0
    out = capsys.readouterr()
    if where:
        assert f"{pattern!r} is not anchored {where}: as in cosign" in out.out + out.err
    else:
        assert "not anchored" not in out.out + out.err
