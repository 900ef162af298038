"""Distinguished names in trust policy identities (`x509.subject: C=US, ST=WA, O=Acme`), read as notation does.

notation-go (internal/pkix ParseDistinguishedName) parses the DN with go-ldap's RFC 4514 parser (v3 dn.go
ParseDN, as notation-go pins it), then refuses `=#` values, multi-valued RDNs (`C=US+ST=WA`) and repeated
attributes, and requires C, ST (or its alias S) and O. The messages are notation's, with Go's quoting.
"""

from __future__ import annotations

REQUIRED = ("C", "ST", "O")
_SPECIAL = ' "#+,;<=>\\'
_HEX = "0123456789abcdefABCDEF"


class DNError(ValueError):
    """The DN breaks RFC 4514 or notation's rules; the message is notation's."""


def go_quote(text: str) -> str:
    """Go's %q of a string: backslash escapes for quotes, backslashes and control characters."""
    escapes = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
               '"': '\\"', "\\": "\\\\"}
    out = []
    for char in text:
        if char in escapes:
            out.append(escapes[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _strip(value: str) -> str:
    """go-ldap stripLeadingAndTrailingSpaces: spaces go, except a trailing space that was escaped."""
    stripped = value.strip(" ")
    if stripped.endswith("\\") and value.endswith(" "):
        stripped += " "
    return stripped


def _decode(raw: str) -> str:
    """go-ldap decodeString: strip, then undo `\\<special>` and `\\XX` escapes."""
    text = _strip(raw)
    out = bytearray()
    index = 0
    while index < len(text):
        char = text[index]
        if char != "\\":
            out += char.encode("utf-8", "surrogatepass")
            index += 1
            continue
        if index + 1 >= len(text):
            raise DNError(f"got corrupted escaped character: '{text}'")
        if text[index + 1] in _SPECIAL:
            out += text[index + 1].encode()
            index += 2
            continue
        if index + 2 >= len(text):
            raise DNError(f"failed to decode escaped character: encoding/hex: invalid byte: {text[index + 1]}")
        pair = text[index + 1:index + 3].encode("utf-8", "surrogatepass")
        if len(pair) != 2:
            raise DNError(f"failed to decode escaped character: invalid byte: {pair.decode('utf-8', 'replace')}")
        bad = next((chr(b) for b in pair if chr(b) not in _HEX), None)
        if bad is not None:
            raise DNError(f"failed to decode escaped character: encoding/hex: invalid byte: {_go_rune(bad)}")
        out.append(int(pair.decode(), 16))
        index += 3
    return out.decode("utf-8", "surrogateescape")


def _go_rune(char: str) -> str:
    """Go's %#U of a rune: `U+0067 'g'`, without the quoted part for an unprintable one."""
    return f"U+{ord(char):04X}" + (f" '{char}'" if char.isprintable() else "")


def parse_rdns(text: str) -> list[list[tuple[str, str]]]:
    """go-ldap ParseDN: RDNs (each a list of type/value pairs), separated by `,` or `;`, values by `+`."""
    rdns: list[list[tuple[str, str]]] = []
    if not text.strip():
        return rdns
    rdn: list[tuple[str, str]] = []
    attr_type, start, escaping = "", 0, False
    for index, char in enumerate(text):
        if escaping:
            escaping = False
        elif char == "\\":
            escaping = True
        elif char == "=" and not attr_type:
            attr_type = _decode(text[start:index])
            start = index + 1
        elif char in ",+;":
            if not attr_type:
                raise DNError("incomplete type, value pair")
            rdn.append((attr_type, _decode(text[start:index])))
            attr_type, start = "", index + 1
            if char != "+":
                rdns.append(rdn)
                rdn = []
    if not attr_type:
        raise DNError("DN ended with incomplete type, value pair")
    rdn.append((attr_type, _decode(text[start:])))
    rdns.append(rdn)
    return rdns


def parse_distinguished_name(name: str) -> dict[str, str]:
    """notation-go ParseDistinguishedName: the attributes of a DN that notation accepts in a trusted identity."""
    quoted = go_quote(name)
    if "=#" in name:
        raise DNError(f'unsupported distinguished name (DN) {quoted}: notation does not support x509.subject '
                      'identities containing "=#"')
    try:
        rdns = parse_rdns(name)
    except DNError as exc:
        raise DNError(f"parsing distinguished name (DN) {quoted} failed with err: {exc}. A valid DN must contain "
                      "'C', 'ST' or 'S', and 'O' RDN attributes at a minimum, and follow RFC 4514 standard") from None
    attributes: dict[str, str] = {}
    for rdn in rdns:
        if len(rdn) > 1:
            raise DNError(f"distinguished name (DN) {quoted} has multi-valued RDN attributes, remove multi-valued "
                          "RDN attributes as they are not supported")
        for attr_type, value in rdn:
            attr_type = "ST" if attr_type == "S" else attr_type
            if attributes.get(attr_type, ""):
                raise DNError(f"distinguished name (DN) {quoted} has duplicate RDN attribute for "
                              f"{go_quote(attr_type)}, DN can only have unique RDN attributes")
            attributes[attr_type] = value
    for required in REQUIRED:
        if not attributes.get(required, ""):
            raise DNError(f"distinguished name (DN) {quoted} has no mandatory RDN attribute for {go_quote(required)}, "
                          "it must contain 'C', 'ST' or 'S', and 'O' RDN attributes at a minimum")
    return attributes


def is_subset(first: dict[str, str], second: dict[str, str]) -> bool:
    """notation-go IsSubsetDN: every attribute of `first` has the same value in `second` (a missing one is "")."""
    return all(second.get(key, "") == value for key, value in first.items())
