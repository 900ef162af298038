package k8simagecontent

import future.keywords.in

import data.lib.sigwarden.answers
import data.lib.sigwarden.completeness
import data.lib.sigwarden.images
import data.lib.sigwarden.platforms
import data.lib.sigwarden.vouching

default allow_on_error := false

allow_on_error := input.parameters.allowOnError

exempt_patterns := object.get(input.parameters, "exemptImages", [])

name_patterns := object.get(input.parameters, "exemptImageNamePatterns", [])

default accept_audit_level := false

accept_audit_level := input.parameters.acceptAuditLevel

listed_platforms := object.get(input.parameters, "platforms", [])

prefix := sprintf("%v: ", [input.parameters.message]) {
  input.parameters.message != ""
} else = ""

# The images this review decides (operation rules and image volumes: objects.rego), one key per image.
checked := images.decided_images_except(input.review, exempt_patterns, name_patterns)

sent := answers.keys(checked)

# An external_data call that produced nothing denies (OPA requires a literal default).
default response := {"responses": [], "errors": [], "status_code": 0, "system_error": "no answer from external_data"}

response := external_data({"provider": "sigwarden", "keys": sent}) {
  count(sent) > 0
}

# Fail closed: an image whose content could not be checked is a violation unless allowOnError covers why.
violation[{"msg": msg, "details": {"image": image}}] {
  answers.system_error(response) != ""
  not answers.excused_system_error(response, allow_on_error)
  image := sent[_]
  msg := sprintf("%vimage %v: content could not be checked: provider error: %v", [prefix, image, answers.system_error(response)])
}

violation[{"msg": msg, "details": {"image": image}}] {
  entry := object.get(response, "errors", [])[_]
  image := entry[0]
  not answers.excused_item_error(entry[1], allow_on_error)
  msg := sprintf("%vimage %v: content could not be checked: %v", [prefix, image, entry[1]])
}

violation[{"msg": msg, "details": {"image": image}}] {
  image := answers.unanswered(response, sent)[_]
  msg := sprintf("%vimage %v: content could not be checked: the provider's answer left it out", [prefix, image])
}

violation[{"msg": msg, "details": {"image": image, "digest": facts.digest}}] {
  entry := object.get(response, "responses", [])[_]
  image := entry[0]
  facts := entry[1]
  not images.exempt_reference(object.get(facts, "reference", ""), exempt_patterns)
  problem := problems(facts)[_]
  msg := sprintf("%vimage %v %v", [prefix, image, problem])
}

# --- which reports count -----------------------------------------------------------------------------

report_authorities := {a | a := input.parameters.vulnerabilityReportAuthorities[_]}

sbom_authorities := {a | a := input.parameters.sbomAuthorities[_]}

# VEX may take a finding out only when signed by an accepted authority (serving vex, which the provider
# checks): vexAuthorities, else the authorities whose reports count.
vex_authorities := {a | a := input.parameters.vexAuthorities[_]} {
  count(object.get(input.parameters, "vexAuthorities", [])) > 0
} else := report_authorities

accepted(entry, allowed) {
  vouching.vouched_by_any(vouching.content_authorities(entry, accept_audit_level), allowed)
}

reports(c) := [r | r := object.get(c, "vulnerabilityReports", [])[_]; accepted(r, report_authorities)]

sboms(c) := [s | s := object.get(c, "sboms", [])[_]; accepted(s, sbom_authorities)]

from_whom(allowed) := sprintf(" from %v", [concat(", ", sort([a | a := allowed[_]]))]) {
  count(allowed) > 0
} else = ""

# Why the reports that are there do not count, for the message.
untrusted_note(entries, allowed) := sprintf(" (found: %v)", [concat("; ", notes)]) {
  notes := [note | e := entries[_]; note := entry_note(e, allowed)]
  count(notes) > 0
} else = ""

entry_note(e, allowed) := sprintf("%v %v", [e.artifact, e.reason]) {
  not e.trusted
}

entry_note(e, allowed) := sprintf("%v signed by %v only at the notation audit level (authenticity failed); set acceptAuditLevel to accept", [e.artifact, concat(", ", e.authorities)]) {
  e.trusted
  not accepted(e, allowed)
  vouching.vouched_by_any(vouching.content_authorities(e, true), allowed)
}

entry_note(e, allowed) := sprintf("%v signed by %v, not an accepted authority", [e.artifact, concat(", ", e.authorities)]) {
  e.trusted
  not accepted(e, allowed)
  not vouching.vouched_by_any(vouching.content_authorities(e, true), allowed)
}

# --- what is checked: the image, and for an index every platform manifest the constraint names --------
# (all by default, compared in containerd's normal form). A node runs a platform manifest, so each one's
# own reports and SBOMs are checked; the index's reports count toward a platform's required report and age.

scopes(facts) := {["", object.get(facts, "content", {})]} | {[label, object.get(p, "content", {})] |
  p := object.get(facts, "platforms", [])[_]
  platforms.named(p, listed_platforms)
  label := sprintf("platform %v (%v) ", [platforms.name(p), p.digest])
}

named_platforms(facts) := [p | p := object.get(facts, "platforms", [])[_]; platforms.named(p, listed_platforms)]

# Where a report or SBOM must be present (and fresh): the image itself, or each named platform with the
# index's own content beside it.
presence_scopes(facts) := {["", [object.get(facts, "content", {})]]} {
  count(named_platforms(facts)) == 0
} else := {[label, [object.get(facts, "content", {}), object.get(p, "content", {})]] |
  p := named_platforms(facts)[_]
  label := sprintf("platform %v (%v) ", [platforms.name(p), p.digest])
}

# --- severities ----------------------------------------------------------------------------------------

# UNKNOWN ranks below LOW: it exceeds a threshold only under BLOCK_ALL.
rank := {"UNKNOWN": 0, "LOW": 1, "MEDIUM": 2, "HIGH": 3, "CRITICAL": 4}

threshold("ALLOW_ALL") := 5

threshold("BLOCK_ALL") := -1

threshold(level) := rank[level]

allowlisted(v) {
  v.id in input.parameters.allowlistCVEs
}

allowlisted(v) {
  object.get(v, "aliases", [])[_] in input.parameters.allowlistCVEs
}

denylisted(v) := v.id {
  v.id in input.parameters.denylistCVEs
} else := alias {
  alias := object.get(v, "aliases", [])[_]
  alias in input.parameters.denylistCVEs
}

fix_word(v) := "fixable" {
  v.fixable
} else = "no fix"

# (parameter, applies to fixable?, applies to unfixable?)
limits[["maximumSeverity", true, true]] {
  input.parameters.maximumSeverity != ""
}

limits[["maximumFixableSeverity", true, false]] {
  input.parameters.maximumFixableSeverity != ""
}

limits[["maximumUnfixableSeverity", false, true]] {
  input.parameters.maximumUnfixableSeverity != ""
}

applies(fixable_too, unfixable_too, v) {
  v.fixable
  fixable_too
}

applies(fixable_too, unfixable_too, v) {
  not v.fixable
  unfixable_too
}

kinds(fixable_too, unfixable_too) := {k | fixable_too; k := "fixable"} | {k | unfixable_too; k := "unfixable"}

# --- every finding of a report: listed, counted, and what VEX took out ---------------------------------

# A finding taken out by VEX stays out only when the VEX document is vouched for by an accepted authority.
vex_honoured(finding, c) {
  doc := object.get(c, "vex", [])[_]
  doc.artifact == finding.vex
  accepted(doc, vex_authorities)
}

unhonoured(report, c) := [s | s := object.get(report, "suppressed", [])[_]; not vex_honoured(s, c)]

# The findings a constraint sees by id: the listed ones and those a VEX it does not accept took out.
findings(report, c) := completeness.findings(report, unhonoured(report, c))

incomplete(report, c) {
  completeness.incomplete(report, unhonoured(report, c))
}

# The bound cut the VEX suppressions and one of them might not be honoured.
incomplete(report, c) {
  object.get(report, "suppressedOmitted", 0) > 0
  count(unhonoured(report, c)) > 0
}

cut_note(report) := sprintf("ids are listed down to %v, %v more omitted", [object.get(report, "listFloor", "?"), object.get(report, "vulnerabilitiesOmitted", 0)])

# --- the problems ----------------------------------------------------------------------------------------

problems(facts) := ((bad_parameters | unchecked(facts)) | scoped_problems(facts)) | presence_scoped_problems(facts)

scoped_problems(facts) := {sprintf("%v%v", [label, m]) |
  scope := scopes(facts)[_]
  label := scope[0]
  m := content_problems(scope[1])[_]
}

presence_scoped_problems(facts) := {sprintf("%v%v", [label, m]) |
  scope := presence_scopes(facts)[_]
  label := scope[0]
  m := presence_problems(scope[1])[_]
}

# A named platform the provider did not look at (over its per-index limit) has unknown content: deny.
unchecked(facts) := {sprintf("platform %v (%v) content could not be checked: %v", [platforms.name(p), p.digest, object.get(p, "reason", "")]) |
  p := named_platforms(facts)[_]
  object.get(p, "contentChecked", true) == false
} | omitted_platforms(facts)

# With all platforms evaluated, or a named one the provider did not list (over its per-index limit), the
# content of the rest is unknown.

omitted_platforms(facts) := {msg |
  platforms.omitted(facts) > 0
  count(listed_platforms) == 0
  msg := sprintf("content of %v platform manifest(s) could not be checked: over the provider's limit of %v per index", [platforms.omitted(facts), facts.platformLimit.maxPlatforms])
} | {msg |
  platforms.omitted(facts) > 0
  spec := listed_platforms[_]
  not platforms.listed(facts, spec)
  msg := sprintf("content of platform %v could not be checked: not among the %v platform manifests checked (%v more not checked)", [spec, facts.platformLimit.maxPlatforms, platforms.omitted(facts)])
}

content_problems(c) := (((over_limit(c) | unlisted_over_limit(c)) | (denied(c) | undecidable_denylist(c))) | licences(c)) | vex_cut(c)

# The bound cut the list of findings VEX took out, and a VEX document here is not accepted: the findings it
# may have taken out are neither counted nor listed.
vex_cut(c) := {msg |
  report := reports(c)[_]
  object.get(report, "suppressedOmitted", 0) > 0
  doc := object.get(c, "vex", [])[_]
  doc.trusted
  not accepted(doc, vex_authorities)
  msg := sprintf("cannot be checked: report %v lists only the first %v findings VEX took out, and VEX %v is not from an accepted authority", [report.artifact, count(report.suppressed), doc.artifact])
}

presence_problems(cs) := (missing_report(cs) | stale(cs)) | missing_sbom(cs)

# Gatekeeper checks parameters against the template's schema; where nothing did, an unknown value must
# still deny rather than silently turn a limit off.
bad_parameters := {msg |
  limits[[name, _, _]]
  level := input.parameters[name]
  not threshold(level)
  msg := sprintf("cannot be checked: parameter %v is %v, not one of CRITICAL, HIGH, MEDIUM, LOW, ALLOW_ALL, BLOCK_ALL", [name, level])
} | {msg |
  limit := input.parameters.maximumReportAge
  not valid_duration(limit)
  msg := sprintf("cannot be checked: parameter maximumReportAge is %v, not a duration such as 168h", [limit])
} | {msg |
  spec := listed_platforms[_]
  platforms.invalid(spec)
  msg := sprintf("cannot be checked: parameter platforms entry %v is not os/architecture[/variant]", [spec])
}

valid_duration(limit) {
  is_string(limit)
  regex.match(`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`, limit)
}

all_of(cs, kind) := [e | e := object.get(cs[_], kind, [])[_]]

all_reports(cs) := [r | r := reports(cs[_])[_]]

all_sboms(cs) := [s | s := sboms(cs[_])[_]]

missing_report(cs) := {msg |
  input.parameters.requireVulnerabilityReport
  count(all_reports(cs)) == 0
  msg := sprintf("has no signed vulnerability report%v%v", [from_whom(report_authorities), untrusted_note(all_of(cs, "vulnerabilityReports"), report_authorities)])
}

over_limit(c) := {msg |
  report := reports(c)[_]
  limits[[name, fixable_too, unfixable_too]]
  level := input.parameters[name]
  v := findings(report, c)[_]
  applies(fixable_too, unfixable_too, v)
  rank[v.severity] > threshold(level)
  not allowlisted(v)
  msg := sprintf("has %v (%v, %v) over %v %v (report %v by %v)", [v.id, v.severity, fix_word(v), name, level, report.artifact, concat(", ", report.authorities)])
}

# Findings over a limit the report counts but does not list by id (under the list's floor, or over its
# bound): they deny, and allowlistCVEs cannot take them out.
unlisted_over_limit(c) := {msg |
  report := reports(c)[_]
  limits[[name, fixable_too, unfixable_too]]
  level := input.parameters[name]
  kind := kinds(fixable_too, unfixable_too)[_]
  rank[severity] > threshold(level)
  n := completeness.unlisted(report, unhonoured(report, c), kind, severity)
  n > 0
  msg := sprintf("has %v %v %v vulnerabilities over %v %v that the report does not list by id (%v), so allowlistCVEs cannot be checked for them (report %v by %v)", [n, severity, kind, name, level, cut_note(report), report.artifact, concat(", ", report.authorities)])
}

denied(c) := {msg |
  report := reports(c)[_]
  v := findings(report, c)[_]
  listed := denylisted(v)
  msg := sprintf("has denylisted %v (%v, %v) (report %v by %v)", [listed, v.id, v.severity, report.artifact, concat(", ", report.authorities)])
}

# A denylisted id the report does not list may still be among the findings it only counts.
undecidable_denylist(c) := {msg |
  report := reports(c)[_]
  incomplete(report, c)
  unseen := [id | id := input.parameters.denylistCVEs[_]; not completeness.known_ids(report)[id]]
  count(unseen) > 0
  msg := sprintf("cannot be checked against denylistCVEs: the report lists %v of its %v vulnerabilities by id (%v), so %v may be among the rest (report %v by %v)", [count(findings(report, c)), completeness.total(report, unhonoured(report, c)), cut_note(report), concat(", ", unseen), report.artifact, concat(", ", report.authorities)])
}

# The time the age rule reads: when the report (or, for one that does not say, its signature or manifest)
# says it was made; when the constraint requires an authenticated one (RFC 3161 timestamp or Rekor), that
# time, or the report's own when it is earlier (a scan signed long after it ran is as old as the scan).
report_time(r) := object.get(r, "producedAt", "") {
  not input.parameters.requireAuthenticatedReportTime
} else := r.producedAt {
  object.get(r, "authenticatedAt", "") != ""
  object.get(r, "producedAtSource", "") == "document"
  time.parse_rfc3339_ns(r.producedAt) < time.parse_rfc3339_ns(r.authenticatedAt)
} else := object.get(r, "authenticatedAt", "")

report_times(cs) := [t | r := all_reports(cs)[_]; report_time(r) != ""; t := time.parse_rfc3339_ns(report_time(r))]

time_kind := "an authenticated time (RFC 3161 timestamp or Rekor entry)" {
  input.parameters.requireAuthenticatedReportTime
} else := "when it was made"

stale(cs) := {msg |
  limit := input.parameters.maximumReportAge
  valid_duration(limit)
  count(all_reports(cs)) > 0
  count(report_times(cs)) == 0
  msg := sprintf("has no signed vulnerability report that says %v (maximumReportAge %v)", [time_kind, limit])
} | {msg |
  limit := input.parameters.maximumReportAge
  valid_duration(limit)
  times := report_times(cs)
  count(times) > 0
  newest := max(times)
  time.now_ns() - newest > time.parse_duration_ns(limit)
  made := [report_time(r) | r := all_reports(cs)[_]; report_time(r) != ""; time.parse_rfc3339_ns(report_time(r)) == newest][0]
  msg := sprintf("has a stale vulnerability report: the newest signed one was made %v, over maximumReportAge %v", [made, limit])
}

missing_sbom(cs) := {msg |
  input.parameters.requireSbom
  count(all_sboms(cs)) == 0
  msg := sprintf("has no signed SBOM%v%v", [from_whom(sbom_authorities), untrusted_note(all_of(cs, "sboms"), sbom_authorities)])
}

# The licence ids of an SPDX expression: "(MIT OR GPL-3.0-only) AND Zlib" → MIT, GPL-3.0-only, Zlib.
licence_terms(expression) := {t |
  t := split(replace(replace(expression, "(", " "), ")", " "), " ")[_]
  not lower(t) in {"", "and", "or", "with"}
}

# SPDX identifiers match case-insensitively (SPDX specification, Annex D).
disallowed := {lower(l) | l := input.parameters.disallowedLicenses[_]}

licences(c) := {msg |
  sbom := sboms(c)[_]
  expression := sbom.licenses[_]
  licence := licence_terms(expression)[_]
  disallowed[lower(licence)]
  msg := sprintf("contains disallowed licence %v (SBOM %v by %v)", [licence, sbom.artifact, concat(", ", sbom.authorities)])
} | {msg |
  sbom := sboms(c)[_]
  completeness.licences_cut(sbom)
  count(disallowed) > 0
  msg := sprintf("cannot be checked against disallowedLicenses: SBOM %v lists only its first %v licences and a disallowed one may be among the rest (by %v)", [sbom.artifact, count(sbom.licenses), concat(", ", sbom.authorities)])
}
