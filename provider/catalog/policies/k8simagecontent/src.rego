package k8simagecontent

import future.keywords.in

import data.lib.sigwarden.answers
import data.lib.sigwarden.images

default allow_on_error := false

allow_on_error := input.parameters.allowOnError

exempt_patterns := object.get(input.parameters, "exemptImages", [])

prefix := sprintf("%v: ", [input.parameters.message]) {
  input.parameters.message != ""
} else = ""

# The images this review decides (operation rules and image volumes: objects.rego), one key per image.
checked := images.decided_images(input.review, exempt_patterns)

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

accepted(entry, allowed) {
  entry.trusted
  count(allowed) == 0
}

accepted(entry, allowed) {
  entry.trusted
  count({a | a := entry.authorities[_]} & allowed) > 0
}

reports(facts) := [r | r := object.get(object.get(facts, "content", {}), "vulnerabilityReports", [])[_]; accepted(r, report_authorities)]

sboms(facts) := [s | s := object.get(object.get(facts, "content", {}), "sboms", [])[_]; accepted(s, sbom_authorities)]

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

entry_note(e, allowed) := sprintf("%v signed by %v, not an accepted authority", [e.artifact, concat(", ", e.authorities)]) {
  e.trusted
  not accepted(e, allowed)
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
  v.aliases[_] in input.parameters.allowlistCVEs
}

denylisted(v) := v.id {
  v.id in input.parameters.denylistCVEs
} else := alias {
  alias := v.aliases[_]
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

# --- the problems ----------------------------------------------------------------------------------------

problems(facts) := (((((bad_parameters | missing_report(facts)) | over_limit(facts)) | denied(facts)) | stale(facts)) | missing_sbom(facts)) | licences(facts)

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
}

valid_duration(limit) {
  is_string(limit)
  regex.match(`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`, limit)
}

content_of(facts, kind) := object.get(object.get(facts, "content", {}), kind, [])

missing_report(facts) := {msg |
  input.parameters.requireVulnerabilityReport
  count(reports(facts)) == 0
  msg := sprintf("has no signed vulnerability report%v%v", [from_whom(report_authorities), untrusted_note(content_of(facts, "vulnerabilityReports"), report_authorities)])
}

over_limit(facts) := {msg |
  report := reports(facts)[_]
  limits[[name, fixable_too, unfixable_too]]
  level := input.parameters[name]
  v := report.vulnerabilities[_]
  applies(fixable_too, unfixable_too, v)
  rank[v.severity] > threshold(level)
  not allowlisted(v)
  msg := sprintf("has %v (%v, %v) over %v %v (report %v by %v)", [v.id, v.severity, fix_word(v), name, level, report.artifact, concat(", ", report.authorities)])
}

denied(facts) := {msg |
  report := reports(facts)[_]
  v := report.vulnerabilities[_]
  listed := denylisted(v)
  msg := sprintf("has denylisted %v (%v, %v) (report %v by %v)", [listed, v.id, v.severity, report.artifact, concat(", ", report.authorities)])
}

report_times(facts) := [t | r := reports(facts)[_]; r.producedAt != ""; t := time.parse_rfc3339_ns(r.producedAt)]

stale(facts) := {msg |
  limit := input.parameters.maximumReportAge
  valid_duration(limit)
  count(reports(facts)) > 0
  count(report_times(facts)) == 0
  msg := sprintf("has no signed vulnerability report that says when it was made (maximumReportAge %v)", [limit])
} | {msg |
  limit := input.parameters.maximumReportAge
  valid_duration(limit)
  times := report_times(facts)
  count(times) > 0
  newest := max(times)
  time.now_ns() - newest > time.parse_duration_ns(limit)
  made := [r.producedAt | r := reports(facts)[_]; r.producedAt != ""; time.parse_rfc3339_ns(r.producedAt) == newest][0]
  msg := sprintf("has a stale vulnerability report: the newest signed one was made %v, over maximumReportAge %v", [made, limit])
}

missing_sbom(facts) := {msg |
  input.parameters.requireSbom
  count(sboms(facts)) == 0
  msg := sprintf("has no signed SBOM%v%v", [from_whom(sbom_authorities), untrusted_note(content_of(facts, "sboms"), sbom_authorities)])
}

# The licence ids of an SPDX expression: "(MIT OR GPL-3.0-only) AND Zlib" → MIT, GPL-3.0-only, Zlib.
licence_terms(expression) := {t |
  t := split(replace(replace(expression, "(", " "), ")", " "), " ")[_]
  not t in {"", "AND", "OR", "WITH", "and", "or", "with"}
}

licences(facts) := {msg |
  sbom := sboms(facts)[_]
  expression := sbom.licenses[_]
  licence := licence_terms(expression)[_]
  licence in input.parameters.disallowedLicenses
  msg := sprintf("contains disallowed licence %v (SBOM %v by %v)", [licence, sbom.artifact, concat(", ", sbom.authorities)])
}
