"""The egress policy: which resolved addresses a store may connect to, in every spelling of an address."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from provider.stores.egress import (
    EgressPolicy,
    EgressRefused,
    api_server_addresses,
    canonical_literal,
    explicit_hosts,
    parse_networks,
)


def resolving(table: dict[str, list[str]]) -> Any:
    """A resolver answering from `table` (so no test name ever reaches DNS), recording what was asked."""
    asked: list[str] = []

    def resolve(host: str, port: int, family: int = 0, kind: int = 0) -> list[Any]:
        asked.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in table[host]]

    resolve.asked = asked  # type: ignore[attr-defined]
    return resolve


WILDCARD = EgressPolicy(api_server=())


@pytest.mark.parametrize("address, what", [
    ("127.0.0.1", "a loopback address"), ("127.8.9.10", "a loopback address"), ("::1", "a loopback address"),
    ("169.254.169.254", "a cloud metadata address"), ("100.100.100.200", "a cloud metadata address"),
    ("168.63.129.16", "a cloud metadata address"), ("fd00:ec2::254", "a cloud metadata address"),
    ("169.254.1.1", "a link-local address"), ("fe80::1", "a link-local address"),
    ("0.0.0.0", "an unspecified address"), ("::", "an unspecified address"),
    ("::ffff:127.0.0.1", "a loopback address"), ("::ffff:169.254.169.254", "a cloud metadata address"),
    ("64:ff9b::a9fe:a9fe", "a cloud metadata address"), ("64:ff9b::7f00:1", "a loopback address"),
    ("2002:7f00:1::", "a loopback address"), ("::127.0.0.1", "a loopback address"),
    ("224.0.0.1", "a multicast address"),
])
def test_refused_addresses_in_every_spelling(address: str, what: str) -> None:
    assert WILDCARD.refusal("registry.example", 443, address) == f"{address} is {what}"


@pytest.mark.parametrize("spelling", ["2130706433", "0177.0.0.1", "0x7f.1", "127.1"])
def test_numeric_host_spellings_resolve_to_loopback_and_are_refused(spelling: str) -> None:
    # The real resolver (numeric forms never leave the process): the check runs on what it answers.
    with pytest.raises(EgressRefused, match=f"egress policy refuses {spelling}:5000: 127.0.0.1 is a loopback"):
        WILDCARD.resolve(spelling, 5000)


def test_public_and_private_addresses_are_allowed() -> None:
    for address in ("93.184.216.34", "10.1.2.3", "192.168.0.5", "2001:db8::1"):
        assert WILDCARD.refusal("registry.example", 443, address) == ""


def test_api_server_address_is_refused_unless_named() -> None:
    servers = api_server_addresses({"KUBERNETES_SERVICE_HOST": "10.96.0.1"})
    policy = EgressPolicy(api_server=servers)
    assert policy.refusal("kubernetes.default", 443, "10.96.0.1") == (
        "10.96.0.1 is the cluster API server (KUBERNETES_SERVICE_HOST)")
    assert policy.refusal("kubernetes.default", 443, "::ffff:10.96.0.1").endswith("(KUBERNETES_SERVICE_HOST)")
    named = EgressPolicy(explicit=frozenset({"kubernetes.default"}), api_server=servers)
    assert named.refusal("kubernetes.default", 443, "10.96.0.1") == ""


def test_resolved_metadata_address_is_refused_before_any_connection() -> None:
    resolver = resolving({"registry.attacker.test": ["169.254.169.254"]})
    policy = EgressPolicy(api_server=(), resolver=resolver)
    with pytest.raises(EgressRefused) as refused:
        policy.resolve("registry.attacker.test", 443)
    assert str(refused.value) == (
        "egress policy refuses registry.attacker.test:443: 169.254.169.254 is a cloud metadata address; name the "
        "host in a store's match or insecure list (or allowNetworks) to allow it")
    assert resolver.asked == ["registry.attacker.test"]


def test_one_refused_answer_refuses_the_name() -> None:
    # A name answering a public and a loopback address is rebinding bait: refused as a whole.
    policy = EgressPolicy(api_server=(), resolver=resolving({"mixed.test": ["93.184.216.34", "127.0.0.1"]}))
    with pytest.raises(EgressRefused, match=r"127\.0\.0\.1 is a loopback address"):
        policy.resolve("mixed.test", 443)


def test_explicit_hosts_come_from_insecure_and_match_patterns_without_wildcards() -> None:
    named = explicit_hosts(["registry.example/team/*", "127.0.0.1:5000/*", "*", "quay*"], ["[::1]:5001"],
                           {"docker.io": "registry-1.docker.io"})
    assert named == frozenset({"registry.example", "127.0.0.1:5000", "[::1]:5001"})
    policy = EgressPolicy(explicit=named, api_server=())
    assert policy.refusal("127.0.0.1", 5000, "127.0.0.1") == ""
    assert policy.refusal("127.0.0.1", 5002, "127.0.0.1") == "127.0.0.1 is a loopback address"  # another port
    assert policy.refusal("::1", 5001, "::1") == ""
    assert policy.refusal("registry.example", 443, "10.0.0.1") == ""
    assert explicit_hosts(["docker.io/library/*"], [], {"docker.io": "registry-1.docker.io"}) == frozenset(
        {"docker.io", "registry-1.docker.io"})


def test_deny_networks_win_even_for_named_hosts() -> None:
    policy = EgressPolicy(explicit=frozenset({"redis.internal"}), deny_networks=parse_networks(["10.96.0.0/12"]),
                          api_server=())
    assert policy.refusal("redis.internal", 443, "10.96.4.4") == "10.96.4.4 is in denyNetworks 10.96.0.0/12"
    assert policy.refusal("other.example", 443, "::ffff:10.96.4.4").startswith("::ffff:10.96.4.4 is in denyNetworks")


def test_wildcard_deny_networks_bind_unnamed_hosts_only_and_no_allow_entry_opens_them() -> None:
    policy = EgressPolicy(explicit=frozenset({"registry.svc:5000"}), allow_networks=parse_networks(["10.0.0.0/8"]),
                          wildcard_deny_networks=parse_networks(["10.0.0.0/8", "fc00::/7"]), api_server=())
    assert policy.refusal("registry.svc", 5000, "10.96.0.10") == ""
    assert policy.refusal("evil.example", 443, "10.96.0.10") == "10.96.0.10 is in wildcardDenyNetworks 10.0.0.0/8"
    assert policy.refusal("evil.example", 443, "64:ff9b::a60:a").endswith("is in wildcardDenyNetworks 10.0.0.0/8")
    assert policy.refusal("evil.example", 443, "fd00::1") == "fd00::1 is in wildcardDenyNetworks fc00::/7"
    # URLs from signed material (CRL, OCSP) are trusted by no name, the store's named host included.
    signer = policy.for_signer_urls()
    assert signer.refusal("registry.svc", 5000, "10.96.0.10").endswith("wildcardDenyNetworks 10.0.0.0/8")
    assert signer.deny_networks == policy.deny_networks and signer.allow_networks == policy.allow_networks
    # A config-named URL (a lookaside) is trusted by its own name only.
    lookaside = policy.naming("sigs.svc:8080")
    assert lookaside.refusal("sigs.svc", 8080, "10.96.0.11") == ""
    assert lookaside.refusal("registry.svc", 5000, "10.96.0.10") != ""


def test_allow_networks_restrict_and_only_a_deliberate_entry_opens_a_refused_range() -> None:
    broad = EgressPolicy(allow_networks=parse_networks(["0.0.0.0/0", "::/0"]), api_server=())
    assert broad.refusal("x.test", 443, "169.254.169.254") == "169.254.169.254 is a cloud metadata address"
    assert broad.refusal("x.test", 443, "127.0.0.1") == "127.0.0.1 is a loopback address"
    narrow = EgressPolicy(allow_networks=parse_networks(["127.0.0.1/32", "10.0.0.0/8"]), api_server=())
    assert narrow.refusal("x.test", 443, "127.0.0.1") == ""
    assert narrow.refusal("x.test", 443, "10.2.3.4") == ""
    assert narrow.refusal("x.test", 443, "93.184.216.34") == "93.184.216.34 is outside allowNetworks"
    assert narrow.refusal("x.test", 443, "127.0.0.2") == "127.0.0.2 is a loopback address"


def test_bad_cidrs_are_config_errors(tmp_path: Any) -> None:
    from provider.config import ConfigError, build_config
    from tests.helpers import write_yaml

    data = {"stores": [{"type": "registry", "match": ["*"], "denyNetworks": ["10.96.0.0/33"]}]}
    with pytest.raises(ConfigError, match="is not a CIDR") as caught:
        build_config(data, write_yaml(tmp_path / "c.yaml", data))
    assert caught.value.field_path == "stores[0].denyNetworks"


def test_a_name_that_does_not_resolve_is_a_connection_failure_not_an_egress_refusal() -> None:
    from provider.stores.egress import ResolutionFailed

    policy = EgressPolicy(api_server=(), resolver=resolving({}))
    with pytest.raises(ResolutionFailed, match=r"cannot resolve nope\.test: Name or service not known"):
        policy.resolve("nope.test", 443)


@pytest.mark.parametrize("host", ["127.0.0.1", "10.1.2.3", "fd00::1", "2001:db8::5", "::1", "::ffff:127.0.0.1",
                                  "::ffff:7f00:1", "::127.0.0.1", "0177.0.0.1", "2130706433", "fe80::1%lo"])
def test_an_address_is_answered_as_the_resolver_would_answer_it(host: str) -> None:
    """Canonical literals skip the resolver; what they get is exactly the resolver's answer, and every other
    spelling still goes to the resolver (which reads decimal, octal and dotted IPv6 tails)."""
    real = socket.getaddrinfo(host, 443, 0, socket.SOCK_STREAM)
    assert EgressPolicy(api_server=()).lookup(host, 443) == real
    if canonical_literal(host, 443) is not None:
        assert [canonical_literal(host, 443)] == real


def test_a_decision_is_remembered_per_policy_never_shared_with_a_copy() -> None:
    named = EgressPolicy(explicit=frozenset({"registry.test"}), api_server=())
    assert named.refusal("registry.test", 443, "127.0.0.1") == ""
    assert named.refusal("registry.test", 443, "127.0.0.1") == ""  # the remembered decision
    assert named.for_signer_urls().refusal("registry.test", 443, "127.0.0.1") == "127.0.0.1 is a loopback address"
    assert named.naming("other.test").refusal("registry.test", 443, "127.0.0.1") == "127.0.0.1 is a loopback address"
