"""Where outbound fetches may connect: the egress policy, checked on every resolved address at connect time.

An image name, a token realm, a redirect or a CRL URL is chosen by whoever wrote the Pod spec or signed
the image. A store matching by wildcard must therefore never reach loopback, link-local, unspecified or
cloud metadata addresses, nor the cluster's API server, however the address is spelled (decimal, octal,
IPv4-mapped IPv6, NAT64): the check runs on the address the name resolves to, right before connecting
to it, so a DNS answer that changes (rebinding) is checked like the first (provider.stores.fetch reuses a
name's answer for a few seconds, never the decision). A host the store names
explicitly (in `match` or `insecure`) is trusted by the operator and may be anywhere but `denyNetworks`;
`wildcardDenyNetworks` (the chart: private, Pod and Service ranges) are refused to every other host.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
AddrInfo = tuple[int, int, int, str, tuple[object, ...]]

_net = ipaddress.ip_network
METADATA_ADDRESSES = tuple(_net(n) for n in ("169.254.169.254/32", "100.100.100.200/32", "168.63.129.16/32",
                                             "fd00:ec2::254/128"))
# (network, what it is): a wildcard store never connects there.
REFUSED_NETWORKS: tuple[tuple[IPNetwork, str], ...] = (
    *((n, "a cloud metadata address") for n in METADATA_ADDRESSES),
    (_net("127.0.0.0/8"), "a loopback address"), (_net("::1/128"), "a loopback address"),
    (_net("169.254.0.0/16"), "a link-local address"), (_net("fe80::/10"), "a link-local address"),
    (_net("0.0.0.0/8"), "an unspecified address"), (_net("::/128"), "an unspecified address"),
    (_net("224.0.0.0/4"), "a multicast address"), (_net("ff00::/8"), "a multicast address"),
    (_net("255.255.255.255/32"), "the broadcast address"),
)
# IPv6 ranges that carry an IPv4 address in their last 32 bits (NAT64 well-known and local-use prefixes,
# IPv4-compatible addresses); IPv4-mapped and 6to4 are unwrapped by the ipaddress module.
_NAT64 = (_net("64:ff9b::/96"), _net("64:ff9b:1::/48"), _net("::/96"))
DEFAULT_PORTS = (443, 80)
MAX_DECISIONS = 4096


class EgressRefused(Exception):
    """A connection the egress policy does not allow; the message says which address and why."""


class ResolutionFailed(OSError):
    """The name does not resolve (an OSError, so HTTP clients treat it as a failed connection)."""


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDRs (or single addresses) from the config; raises ValueError naming the bad one."""
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not a CIDR such as 10.96.0.0/12 or fd00::/8") from None
    return tuple(networks)


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, NAT64, compatible), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in prefix for prefix in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def api_server_addresses(environ: dict[str, str] | None = None) -> tuple[IPAddress, ...]:
    """The cluster API server's Service address, when running in a Pod."""
    value = (environ if environ is not None else os.environ).get("KUBERNETES_SERVICE_HOST", "").strip("[] ")
    try:
        return (ipaddress.ip_address(value),) if value else ()
    except ValueError:
        return ()


def split_host(text: str) -> tuple[str, int | None]:
    """`host`, `host:port`, `[v6]:port` → (lowercase host without brackets, port or None)."""
    text = text.strip().lower()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    host, sep, port = text.rpartition(":")
    if sep and port.isdigit() and ":" not in host:
        return host, int(port)
    return text, None


def canonical_literal(host: str, port: int) -> AddrInfo | None:
    """The resolver's answer for an address written in its canonical form (`10.0.0.1`, `fd00::1`), or None
    for a name or any other spelling (decimal, octal, IPv4 inside IPv6, a scope), which the resolver reads."""
    if "%" in host:
        return None  # a zone: the resolver turns its name into the interface index
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if str(ip) != host:
        return None
    if isinstance(ip, ipaddress.IPv4Address):
        return socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port)
    if ip.ipv4_mapped is not None or int(ip) >> 32 == 0:
        return None  # the resolver writes these with a dotted IPv4 tail
    return socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (host, port, 0, 0)


def explicit_hosts(match: Sequence[str], insecure: Sequence[str], aliases: dict[str, str]) -> frozenset[str]:
    """Hosts a store names itself: `insecure` entries and the host part of `match` patterns without `*`."""
    named = list(insecure)
    for pattern in match:
        host = pattern.split("/", 1)[0]
        if "/" in pattern and "*" not in host and host:
            named.append(host)
    named.extend(aliases[h] for h in list(named) if h in aliases)
    return frozenset(h.strip().lower() for h in named)


@dataclass(frozen=True)
class EgressPolicy:
    """Which addresses a store may connect to. The default (nothing named) is the wildcard policy."""

    explicit: frozenset[str] = frozenset()  # `host` or `host:port`, lowercase
    allow_networks: tuple[IPNetwork, ...] = ()
    deny_networks: tuple[IPNetwork, ...] = ()
    # Refused to hosts no store names (private, Pod and Service ranges); a named host may be there.
    wildcard_deny_networks: tuple[IPNetwork, ...] = ()
    api_server: tuple[IPAddress, ...] = field(default_factory=api_server_addresses)
    resolver: Callable[..., list[AddrInfo]] = field(default=socket.getaddrinfo, repr=False, compare=False)
    # (host, port, address) → refusal: a pure function of this frozen policy, asked on every fetch.
    _decided: dict[tuple[str, int, str], str] = field(default_factory=dict, init=False, repr=False, compare=False)

    def for_signer_urls(self) -> EgressPolicy:
        """The same networks, with no host trusted by name: for URLs that signed material chooses (CRL
        distribution points, OCSP responders), which must never reach what only a named host may."""
        return replace(self, explicit=frozenset())

    def naming(self, host: str) -> EgressPolicy:
        """The same networks, with only `host` (a URL the config names, such as a lookaside) trusted by name."""
        return replace(self, explicit=frozenset({host.strip().lower()}))

    def is_explicit(self, host: str, port: int) -> bool:
        host = host.strip("[]").lower()
        for entry in self.explicit:
            name, named_port = split_host(entry)
            if name == host and (port == named_port or (named_port is None and port in DEFAULT_PORTS)):
                return True
        return False

    def refusal(self, host: str, port: int, address: str) -> str:
        """Empty when `host:port` may be reached at `address`; else the reason it may not."""
        key = (host, port, address)
        decided = self._decided.get(key)
        if decided is None:
            decided = self._refusal(host, port, address)
            if len(self._decided) >= MAX_DECISIONS:
                self._decided.clear()  # an attacker inventing names only ever costs a recomputation
            self._decided[key] = decided
        return decided

    def _refusal(self, host: str, port: int, address: str) -> str:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        candidates = [ip] + [v4 for v4 in [embedded_ipv4(ip)] if v4 is not None]
        for candidate in candidates:
            for network in self.deny_networks:
                if candidate in network:
                    return f"{address} is in denyNetworks {network}"
        if self.is_explicit(host, port):
            return ""
        for candidate in candidates:
            for network in self.wildcard_deny_networks:
                if candidate in network:
                    return f"{address} is in wildcardDenyNetworks {network}"
        for candidate in candidates:
            problem = self._builtin_refusal(candidate)
            if problem and not self._deliberately_allowed(candidate, problem[1]):
                return f"{address} is {problem[0]}"
        if self.allow_networks and not any(c in n for c in candidates for n in self.allow_networks):
            return f"{address} is outside allowNetworks"
        return ""

    def _builtin_refusal(self, ip: IPAddress) -> tuple[str, IPNetwork] | None:
        for network, what in REFUSED_NETWORKS:
            if ip in network:
                return what, network
        if ip in self.api_server:
            return "the cluster API server (KUBERNETES_SERVICE_HOST)", ipaddress.ip_network(ip)
        return None

    def _deliberately_allowed(self, ip: IPAddress, refused: IPNetwork) -> bool:
        # Only an allowNetworks entry inside the refused range opens it: 0.0.0.0/0 never opens metadata.
        return any(ip in n and n.version == refused.version and n.subnet_of(refused)  # type: ignore[arg-type]
                   for n in self.allow_networks)

    def resolve(self, host: str, port: int) -> list[AddrInfo]:
        """The resolved addresses of `host` that may be reached; raises EgressRefused when there are none."""
        return self.check(host, port, self.lookup(host, port))

    def lookup(self, host: str, port: int) -> list[AddrInfo]:
        """What `host` resolves to, unchecked; raises ResolutionFailed."""
        literal = canonical_literal(host.strip("[]"), port)
        if literal is not None:
            return [literal]  # what the resolver would answer, without asking it
        try:
            return self.resolver(host.strip("[]"), port, 0, socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise ResolutionFailed(f"cannot resolve {host}: {exc.strerror}") from None

    def check(self, host: str, port: int, infos: Sequence[AddrInfo]) -> list[AddrInfo]:
        """The addresses of `infos` (what `host` resolved to) that may be reached; raises EgressRefused when
        one may not."""
        allowed, problems = [], []
        for info in infos:
            problem = self.refusal(host, port, str(info[4][0]))
            if problem:
                problems.append(problem)
            else:
                allowed.append(info)
        if problems:
            # One refused address refuses the name: a name mixing public and private answers is rebinding bait.
            hint = "" if self.is_explicit(host, port) else (
                "; name the host in a store's match or insecure list (or allowNetworks) to allow it")
            raise EgressRefused(f"egress policy refuses {host}:{port}: {problems[0]}{hint}")
        if not allowed:
            raise ResolutionFailed(f"cannot resolve {host}: no addresses")
        return allowed
