package lib.sigwarden.vouching

# Who vouches for a subject: an image's facts, one platform manifest of an index, or one content entry
# (a report, SBOM or VEX document). The one definition every shipped rule uses.
#
# An authority vouches when it verified a signature over the subject; one whose every such signature passed
# only because notation's `audit` level logs a failed authenticity check vouches only when the constraint
# accepts the audit level. A content entry vouches only when it is trusted (an authority serving its purpose
# signed it, about exactly this digest).

listed(subject, field) := {a | a := object.get(subject, field, [])[_]}

# Authorities whose verified signatures all had authenticity "logged": from the facts' own list, and from
# the signatures where the subject carries them (facts of a provider that predates the list).
audit_level(subject) := listed(subject, "auditLevelAuthorities") | ({s.authority | s := object.get(subject, "signatures", [])[_]; s.verified} - {s.authority | s := object.get(subject, "signatures", [])[_]; s.verified; object.get(s, ["checks", "authenticity"], "") != "logged"})

authorities(subject, accept_audit_level) := listed(subject, "authorities") {
  accept_audit_level
} else := listed(subject, "authorities") - audit_level(subject)

# A content entry (vulnerability report, SBOM, VEX): untrusted ones have no vouchers.
content_authorities(entry, accept_audit_level) := authorities(entry, accept_audit_level) {
  entry.trusted
} else := set()

# Vouched for by one of `wanted` (any voucher when `wanted` is empty).
vouched_by_any(vouchers, wanted) {
  count(wanted) == 0
  count(vouchers) > 0
}

vouched_by_any(vouchers, wanted) {
  count(vouchers & wanted) > 0
}
