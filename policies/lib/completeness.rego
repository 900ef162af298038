package lib.sigwarden.completeness

# Completeness of a vulnerability report or SBOM summary in the facts: what a policy can decide from the
# listed ids alone, and when it cannot. `extra` are findings a policy counts again (suppressed by a VEX
# document it does not accept), in the listed shape (id, severity, fixable).

severities := ["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"]

kind_of(v) := "fixable" {
  v.fixable
} else = "unfixable"

# Every finding the policy sees by id.
findings(report, extra) := array.concat(object.get(report, "vulnerabilities", []), extra)

# Every finding of a kind (fixable, unfixable) and severity, listed or not: the report's counts cover all.
counted(report, extra, kind, severity) := object.get(report, ["counts", kind, severity], 0) + count([v |
  v := extra[_]
  kind_of(v) == kind
  v.severity == severity
])

listed_count(report, extra, kind, severity) := count([v |
  v := findings(report, extra)[_]
  kind_of(v) == kind
  v.severity == severity
])

# Findings of that kind and severity the report counts but does not list by id.
unlisted(report, extra, kind, severity) := counted(report, extra, kind, severity) - listed_count(report, extra, kind, severity)

total(report, extra) := sum([counted(report, extra, kind, severity) | kind := ["fixable", "unfixable"][_]; severity := severities[_]])

# Some findings are not listed by id: under verification.vulnerabilityFloor or over the 200-id bound.
incomplete(report, extra) {
  total(report, extra) > count(findings(report, extra))
}

# The ids (and aliases) a report names, suppressed ones included.
known_ids(report) := {id | v := object.get(report, "vulnerabilities", [])[_]; id := array.concat([v.id], object.get(v, "aliases", []))[_]} | {s.id | s := object.get(report, "suppressed", [])[_]}

# An SBOM whose licence list was cut: a licence may be missing from it.
licences_cut(sbom) {
  object.get(sbom, "licensesTruncated", false) == true
}
