"""The Notary Project trust policy document (version 1.0), read verbatim and validated as notation-go does
(verifier/trustpolicy: OCIDocument.Validate, validatePolicyCore), with notation's messages. Registry scopes are
then normalised like image references, so two spellings of one repository are one scope."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from provider.reference import InvalidReference, parse_reference
from provider.verifiers.notation.dn import DNError, go_quote, is_subset, parse_distinguished_name

CHECKS = ("integrity", "authenticity", "authenticTimestamp", "expiry", "revocation")
LEVELS: dict[str, dict[str, str]] = {
    "strict": dict.fromkeys(CHECKS, "enforce"),
    "permissive": {"integrity": "enforce", "authenticity": "enforce", "authenticTimestamp": "log",
                   "expiry": "log", "revocation": "log"},
    "audit": {"integrity": "enforce", "authenticity": "log", "authenticTimestamp": "log", "expiry": "log",
              "revocation": "log"},
    "skip": dict.fromkeys(CHECKS, "skip"),
}
ACTIONS = ("enforce", "log", "skip")
VERSIONS = ("1.0",)
STORE_TYPES = ("ca", "signingAuthority", "tsa")
X509_SUBJECT = "x509.subject"
_STORE_NAME = re.compile(r"[a-zA-Z0-9_.-]+")
# notation-go validateRegistryScopeFormat (adapted there from distribution's reference grammar).
_SCOPE_DOMAIN = re.compile(r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
                           r"(?:(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))+)?(?::[0-9]+)?")
_SCOPE_REPOSITORY = re.compile(r"[a-z0-9]+(?:(?:(?:[._]|__|[-]*)[a-z0-9]+)+)?"
                               r"(?:(?:/[a-z0-9]+(?:(?:(?:[._]|__|[-]*)[a-z0-9]+)+)?)+)?")
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

    def skipping(self, repository: str) -> str:
        """The name of the statement that applies to `repository` when its level is `skip`, else "" (notation-go
        Verify then reports success without checking any signature)."""
        policy = self.policy_for(repository)
        return policy.name if policy is not None and policy.level == "skip" else ""


def subject_attributes(name: x509.Name) -> dict[str, str]:
    return {_SHORT_NAMES.get(attribute.oid, attribute.oid.dotted_string): str(attribute.value) for attribute in name}


def _statement_error(name: str, problem: str) -> TrustPolicyError:
    """A statement-level error as notation-go's OCIDocument.Validate wraps validatePolicyCore's."""
    return TrustPolicyError(f"oci trust policy: trust policy statement {go_quote(name)} {problem}")


def _identities(raw: Sequence[str], policy: str) -> tuple[Mapping[str, str] | None, ...]:
    """notation-go validateTrustedIdentities; identities of another kind than x509.subject (for plugins) are
    accepted as notation accepts them, and match no certificate here."""
    if len(raw) > 1 and "*" in raw:
        raise _statement_error(policy, "uses a wildcard trusted identity '*', a wildcard identity cannot be used in "
                                       "conjunction with other values")
    if "*" in raw:
        return (None,)
    parsed: list[tuple[str, dict[str, str]]] = []
    for identity in raw:
        if identity == "":
            raise _statement_error(policy, "has an empty trusted identity")
        prefix, sep, value = identity.partition(":")
        if not sep:
            raise _statement_error(policy, f"has trusted identity {go_quote(identity)} missing separator")
        if prefix != X509_SUBJECT:
            continue
        if value == "":
            raise _statement_error(policy, f"has trusted identity {go_quote(identity)} without an identity value")
        try:
            parsed.append((identity, parse_distinguished_name(value)))
        except DNError as exc:
            raise _statement_error(policy, f"has trusted identity {go_quote(identity)} with invalid identity "
                                           f"value: {exc}") from None
    for index, (first, first_dn) in enumerate(parsed):
        for other, (second, second_dn) in enumerate(parsed):
            if index != other and is_subset(first_dn, second_dn):
                raise _statement_error(policy, f"has overlapping x509 trustedIdentities, {go_quote(first)} overlaps "
                                               f"with {go_quote(second)}")
    return tuple(dn for _, dn in parsed)


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


def _go_list(values: Sequence[str]) -> str:
    return "[" + " ".join(go_quote(v) for v in values) + "]"


def _level(verification: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """notation-go SignatureVerification.GetVerificationLevel: the level and its action per validation."""
    level = verification.get("level") or ""
    if level == "":
        raise ValueError("signature verification level is empty or missing in the trust policy statement")
    if not isinstance(level, str) or level not in LEVELS:
        raise ValueError(f"invalid signature verification level {go_quote(str(level))}")
    override = _mapping(verification.get("override") or {}, "signatureVerification.override")
    if not override:
        return level, dict(LEVELS[level])
    if level == "skip":
        raise ValueError('signature verification level "skip" can\'t be used to customize signature verification')
    actions = dict(LEVELS[level])
    for check, action in override.items():
        if check not in CHECKS:
            raise ValueError(f"verification type {go_quote(str(check))} in custom signature verification is not "
                             f"supported, supported values are {_go_list(CHECKS)}")
        if action not in ACTIONS:
            raise ValueError(f"verification action {go_quote(str(action))} in custom signature verification is "
                             f"not supported, supported values are {_go_list(ACTIONS)}")
        if check == "integrity":
            raise ValueError(f"{go_quote(check)} verification can not be overridden in custom signature verification")
        if check != "revocation" and action == "skip":
            raise ValueError(f"{go_quote(check)} verification can not be skipped in custom signature verification")
        actions[check] = action
    return level, actions


def _store_problem(store: str) -> str:
    """notation-go validateTrustStore, for one `type:name` value."""
    store_type, sep, store_name = store.partition(":")
    if not sep:
        return (f"has malformed trust store value {go_quote(store)}. The required format is "
                "<TrustStoreType>:<TrustStoreName>")
    if store_type not in STORE_TYPES:
        return f"uses an unsupported trust store type {go_quote(store_type)} in trust store value {go_quote(store)}"
    if not _STORE_NAME.fullmatch(store_name):
        return (f"uses an unsupported trust store name {go_quote(store_name)} in trust store value "
                f"{go_quote(store)}. Named store name needs to follow [a-zA-Z0-9_.-]+ format")
    return ""


def _statement(raw: Mapping[str, Any], name: str, known_stores: Sequence[str]) -> TrustPolicy:
    """notation-go validatePolicyCore, then sigwarden's own rule: every store is one the authority defines."""
    if name == "":
        raise TrustPolicyError("oci trust policy: a trust policy statement is missing a name, every statement "
                               "requires a name")
    verification = _mapping(raw.get("signatureVerification") or {},
                            f'signatureVerification of trust policy statement "{name}"')
    try:
        level, actions = _level(verification)
    except (ValueError, TrustPolicyError) as exc:
        raise _statement_error(name, f"has invalid signatureVerification: {exc}") from None
    timestamp_rule = verification.get("verifyTimestamp") or ""
    if timestamp_rule not in ("", "always", "afterCertExpiry"):
        raise _statement_error(name, 'has invalid signatureVerification: verifyTimestamp must be "always" or '
                                     f'"afterCertExpiry", but got {go_quote(str(timestamp_rule))}')
    stores = tuple(_strings(raw, "trustStores", name))
    identities_raw = _strings(raw, "trustedIdentities", name)
    scopes = tuple(_strings(raw, "registryScopes", name))
    if level == "skip":
        if stores or identities_raw:
            raise _statement_error(name, "is set to skip signature verification but configured with trust stores "
                                         "and/or trusted identities, remove them if signature verification needs "
                                         "to be skipped")
        return TrustPolicy(name, scopes, level, actions, (), ())
    if not stores or not identities_raw:
        raise _statement_error(name, "is either missing trust stores or trusted identities, both must be specified")
    for store in stores:
        problem = _store_problem(store)
        if problem:
            raise _statement_error(name, problem)
    identities = _identities(identities_raw, name)
    for store in stores:
        if known_stores and store not in known_stores:
            raise TrustPolicyError(f'trust policy statement "{name}" uses trust store "{store}", which the '
                                   "authority does not define in trustStores")
    return TrustPolicy(name, scopes, level, actions, stores, identities, timestamp_rule or "always")


def _scope_problem(scope: str) -> str:
    """notation-go validateRegistryScopeFormat: a fully qualified repository, no tag, no wildcard."""
    ensure = ("make sure it is a fully qualified repository without the scheme, protocol or tag. For example "
              "domain.com/my/repository or a local scope like local/myOCILayout")
    if len(scope) > 1 and "*" in scope:
        return f"registry scope {go_quote(scope)} with wild card(s) is not valid, {ensure}"
    domain, sep, repository = scope.partition("/")
    if not sep or not _SCOPE_DOMAIN.fullmatch(domain) or not _SCOPE_REPOSITORY.fullmatch(repository):
        return f"registry scope {go_quote(scope)} is not valid, {ensure}"
    return ""


def _normalised_scope(scope: str) -> str:
    """A valid registry scope in the form images are matched in (lowercase host, no default port, Docker Hub
    rules), so two spellings of one repository are one scope."""
    if scope == "*":
        return scope
    try:
        return parse_reference(scope, default_tag="").name
    except InvalidReference as exc:
        raise TrustPolicyError(f"registry scope {go_quote(scope)} is not valid: {exc}") from None


def _registry_scopes(policies: list[TrustPolicy]) -> list[TrustPolicy]:
    """notation-go validateRegistryScopes; the statements with their scopes normalised."""
    owners: dict[str, str] = {}
    normalised = []
    for policy in policies:
        if not policy.registry_scopes:
            raise TrustPolicyError(f"oci trust policy statement {go_quote(policy.name)} has zero registry scopes, it "
                                   "must specify registry scopes with at least one value")
        if len(policy.registry_scopes) > 1 and "*" in policy.registry_scopes:
            raise TrustPolicyError(f"oci trust policy statement {go_quote(policy.name)} uses wildcard registry scope "
                                   "'*', a wildcard scope cannot be used in conjunction with other scope values")
        for scope in policy.registry_scopes:
            problem = "" if scope == "*" else _scope_problem(scope)
            if problem:
                raise TrustPolicyError(problem)
        scopes = tuple(_normalised_scope(scope) for scope in policy.registry_scopes)
        for scope in scopes:
            if owners.setdefault(scope, policy.name) != policy.name or scopes.count(scope) > 1:
                raise TrustPolicyError(f"registry scope {go_quote(scope)} is present in multiple oci trust policy "
                                       "statements, one registry scope value can only be associated with one "
                                       "statement")
        normalised.append(replace(policy, registry_scopes=scopes))
    return normalised


def parse_trust_policy(document: Mapping[str, Any], known_stores: Sequence[str] = ()) -> TrustPolicyDocument:
    """Validate a trust policy document as notation-go's OCIDocument.Validate does, with its messages;
    `known_stores` are the store names the authority defines."""
    document = _mapping(document, "the trust policy document")
    version = document.get("version") or ""
    if version == "":
        raise TrustPolicyError("oci trust policy document has empty version, version must be specified")
    if version not in VERSIONS:
        raise TrustPolicyError(f"oci trust policy document uses unsupported version {go_quote(str(version))}")
    statements = document.get("trustPolicies") or []
    if not isinstance(statements, list):
        raise TrustPolicyError("trustPolicies of the trust policy document is not a JSON array")
    if not statements:
        raise TrustPolicyError("oci trust policy document can not have zero trust policy statements")
    policies: list[TrustPolicy] = []
    for raw in statements:
        raw = _mapping(raw, "a trust policy statement")
        name = raw.get("name") or ""
        if not isinstance(name, str):
            raise TrustPolicyError("a trust policy statement has a name that is not a string")
        if any(p.name == name for p in policies):
            raise TrustPolicyError(f"multiple oci trust policy statements use the same name {go_quote(name)}, "
                                   "statement names must be unique")
        policies.append(_statement(raw, name, known_stores))
    return TrustPolicyDocument(tuple(_registry_scopes(policies)))
