"""The Notary Project trust policy document (version 1.0), read verbatim and validated like notation does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from provider.reference import InvalidReference, parse_reference

CHECKS = ("integrity", "authenticity", "authenticTimestamp", "expiry", "revocation")
LEVELS: dict[str, dict[str, str]] = {
    "strict": dict.fromkeys(CHECKS, "enforce"),
    "permissive": {"integrity": "enforce", "authenticity": "enforce", "authenticTimestamp": "log",
                   "expiry": "log", "revocation": "log"},
    "audit": {"integrity": "enforce", "authenticity": "log", "authenticTimestamp": "log", "expiry": "log",
              "revocation": "log"},
    "skip": dict.fromkeys(CHECKS, "skip"),
}
STORE_TYPES = ("ca", "signingAuthority", "tsa")
REQUIRED_IDENTITY_ATTRIBUTES = ("C", "ST", "O")
_SHORT_NAMES = {NameOID.COUNTRY_NAME: "C", NameOID.STATE_OR_PROVINCE_NAME: "ST", NameOID.LOCALITY_NAME: "L",
                NameOID.ORGANIZATION_NAME: "O", NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
                NameOID.COMMON_NAME: "CN", NameOID.EMAIL_ADDRESS: "E", NameOID.SERIAL_NUMBER: "SERIALNUMBER"}


class TrustPolicyError(ValueError):
    """The trust policy document is invalid; the message reads like notation's."""


@dataclass(frozen=True)
class TrustPolicy:
    name: str
    registry_scopes: tuple[str, ...]
    level: str
    actions: Mapping[str, str]  # check → enforce | log | skip
    trust_stores: tuple[str, ...]  # "type:name"
    trusted_identities: tuple[Mapping[str, str] | None, ...]  # None = "*"
    verify_timestamp: str = "always"  # always | afterCertExpiry

    def identity_matches(self, subject: x509.Name) -> bool:
        attributes = subject_attributes(subject)
        return any(identity is None or all(attributes.get(k) == v for k, v in identity.items())
                   for identity in self.trusted_identities)


@dataclass(frozen=True)
class TrustPolicyDocument:
    policies: tuple[TrustPolicy, ...]

    def policy_for(self, repository: str) -> TrustPolicy | None:
        """The statement for `registry/repository`: an exact scope wins over the `*` global one."""
        exact = next((p for p in self.policies if repository in p.registry_scopes), None)
        return exact or next((p for p in self.policies if "*" in p.registry_scopes), None)


def subject_attributes(name: x509.Name) -> dict[str, str]:
    return {_SHORT_NAMES.get(attribute.oid, attribute.oid.dotted_string): str(attribute.value) for attribute in name}


def _parse_dn(text: str, policy: str) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise TrustPolicyError(f'trust policy statement "{policy}" has trusted identity "x509.subject: {text}" '
                                   "with an invalid distinguished name")
        if key.strip() in attributes:
            raise TrustPolicyError(f'trust policy statement "{policy}" has trusted identity "x509.subject: {text}" '
                                   f"with a repeated attribute {key.strip()}")
        attributes[key.strip()] = value.strip()
    missing = [a for a in REQUIRED_IDENTITY_ATTRIBUTES if a not in attributes]
    if missing:
        raise TrustPolicyError(f'trust policy statement "{policy}" has trusted identity "x509.subject: {text}" '
                               f"without the required attributes {', '.join(missing)} (C, ST and O are required)")
    return attributes


def _identities(raw: Sequence[Any], policy: str) -> tuple[Mapping[str, str] | None, ...]:
    if "*" in raw:
        if len(raw) > 1:
            raise TrustPolicyError(f'trust policy statement "{policy}" uses the wildcard trusted identity "*" '
                                   "together with other identities")
        return (None,)
    parsed: list[dict[str, str]] = []
    for identity in raw:
        prefix, sep, value = str(identity).partition(":")
        if not sep or prefix.strip() != "x509.subject":
            raise TrustPolicyError(f'trust policy statement "{policy}" has trusted identity "{identity}" that is '
                                   'not "*" or "x509.subject: <DN>"')
        attributes = _parse_dn(value.strip(), policy)
        if attributes in parsed:
            raise TrustPolicyError(f'trust policy statement "{policy}" has overlapping x509 trustedIdentities: '
                                   f'"{identity}"')
        parsed.append(attributes)
    return tuple(parsed)


def _strings(raw: Mapping[str, Any], key: str, policy: str) -> list[str]:
    """A statement's list-of-strings field (absent = empty); anything else is a TrustPolicyError."""
    value = raw.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise TrustPolicyError(f'trust policy statement "{policy}" has {key} that is not a list of strings')
    return value


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TrustPolicyError(f"{what} is not a JSON object")
    return value


def _actions(level: str, override: Mapping[str, Any], policy: str) -> dict[str, str]:
    actions = dict(LEVELS[level])
    for check, action in override.items():
        if check not in CHECKS:
            raise TrustPolicyError(f'trust policy statement "{policy}" overrides unknown validation "{check}"')
        if action not in ("enforce", "log", "skip"):
            raise TrustPolicyError(f'trust policy statement "{policy}" uses unknown action "{action}" for "{check}"')
        if check == "integrity":
            raise TrustPolicyError(f'trust policy statement "{policy}" cannot override the integrity validation')
        if check == "authenticity" and action == "skip":
            raise TrustPolicyError(f'trust policy statement "{policy}" cannot skip the authenticity validation')
        actions[check] = action
    return actions


def _normalised_scope(scope: str) -> str:
    """A registry scope in the form images are matched in (lowercase host, no default port, Docker Hub rules)."""
    if scope == "*":
        return scope
    invalid = TrustPolicyError(f'registry scope "{scope}" is not valid, make sure it is a fully qualified '
                               "repository without a tag or digest")
    if "/" not in scope or "@" in scope or ":" in scope.split("/", 1)[1]:
        raise invalid
    try:
        reference = parse_reference(scope, default_tag="")
    except InvalidReference:
        raise invalid from None
    return reference.name


def parse_trust_policy(document: Mapping[str, Any], known_stores: Sequence[str] = ()) -> TrustPolicyDocument:
    """Validate a trust policy document; `known_stores` are the store names the authority defines."""
    document = _mapping(document, "the trust policy document")
    if document.get("version") != "1.0":
        raise TrustPolicyError(f'trust policy document has unsupported version "{document.get("version")}" '
                               '(supported: "1.0")')
    statements = document.get("trustPolicies")
    if not isinstance(statements, list) or not statements:
        raise TrustPolicyError("trust policy document has no trust policy statements")
    policies: list[TrustPolicy] = []
    names: set[str] = set()
    scopes: dict[str, str] = {}
    for raw in statements:
        if not isinstance(raw, Mapping):
            raise TrustPolicyError("a trust policy statement is not an object")
        name = raw.get("name") or ""
        if not isinstance(name, str) or not name:
            raise TrustPolicyError("a trust policy statement is missing a name, every statement requires a name")
        if name in names:
            raise TrustPolicyError(f'multiple trust policy statements use the same name "{name}", statement names '
                                   "must be unique")
        names.add(name)
        registry_scopes = _strings(raw, "registryScopes", name)
        if not registry_scopes:
            raise TrustPolicyError(f'trust policy statement "{name}" has zero registry scopes, it must specify '
                                   "registry scopes with at least one value")
        if "*" in registry_scopes and len(registry_scopes) > 1:
            raise TrustPolicyError(f'trust policy statement "{name}" uses wildcard registry scope "*", a wildcard '
                                   "scope cannot be used in conjunction with other scope values")
        # Matched on the normalised form, so two spellings of one repository are one scope.
        registry_scopes = [_normalised_scope(scope) for scope in registry_scopes]
        for scope in registry_scopes:
            if scope in scopes:
                what = ('registry scope "*" is present in multiple trust policy statements, one of the statements '
                        "must be global") if scope == "*" else (
                    f'registry scope "{scope}" is present in multiple trust policy statements, one registry scope '
                    "value can only be associated with one statement")
                raise TrustPolicyError(what)
            scopes[scope] = name
        verification = _mapping(raw.get("signatureVerification") or {},
                                f'signatureVerification of trust policy statement "{name}"')
        level = verification.get("level")
        if not isinstance(level, str) or level not in LEVELS:
            raise TrustPolicyError(f'trust policy statement "{name}" uses invalid signatureVerification level '
                                   f'"{level}"')
        actions = _actions(level, _mapping(verification.get("override") or {},
                                           f'signatureVerification.override of trust policy statement "{name}"'), name)
        stores = tuple(_strings(raw, "trustStores", name))
        identities_raw = _strings(raw, "trustedIdentities", name)
        if level == "skip":
            if stores or identities_raw:
                raise TrustPolicyError(f'trust policy statement "{name}" is set to skip signature verification '
                                       "but configured trust stores and/or trusted identities, remove them")
            policies.append(TrustPolicy(name, tuple(registry_scopes), level, actions, (), ()))
            continue
        if not stores:
            raise TrustPolicyError(f'trust policy statement "{name}" is either missing trust stores or trusted '
                                   "identities, both must be specified")
        if not identities_raw:
            raise TrustPolicyError(f'trust policy statement "{name}" is either missing trust stores or trusted '
                                   "identities, both must be specified")
        for store in stores:
            store_type, sep, store_name = store.partition(":")
            if not sep or store_type not in STORE_TYPES or not store_name:
                raise TrustPolicyError(f'trust policy statement "{name}" uses an unsupported trust store type '
                                       f'"{store_type}" in trust store value "{store}"')
            if known_stores and store not in known_stores:
                raise TrustPolicyError(f'trust policy statement "{name}" uses trust store "{store}", which the '
                                       "authority does not define in trustStores")
        timestamp_rule = verification.get("verifyTimestamp", "always")
        if timestamp_rule not in ("always", "afterCertExpiry"):
            raise TrustPolicyError(f'trust policy statement "{name}" uses invalid verifyTimestamp "{timestamp_rule}"')
        policies.append(TrustPolicy(name, tuple(registry_scopes), level, actions, stores,
                                    _identities(identities_raw, name), timestamp_rule))
    return TrustPolicyDocument(tuple(policies))
