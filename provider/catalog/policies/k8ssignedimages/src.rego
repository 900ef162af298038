package k8ssignedimages

import future.keywords.in

import data.lib.sigwarden.answers
import data.lib.sigwarden.images

default allow_on_error := false

allow_on_error := input.parameters.allowOnError

required_authorities := {a | a := input.parameters.authorities[_]}

exempt_patterns := object.get(input.parameters, "exemptImages", [])

default accept_audit_level := false

accept_audit_level := input.parameters.acceptAuditLevel

prefix := sprintf("%v: ", [input.parameters.message]) {
  input.parameters.message != ""
} else = ""

# Break-glass (kritis): the object is admitted, and audit still reports it. Gatekeeper's audit
# reviews carry no admission operation, which is how the two are told apart.
breakglass {
  annotation := input.parameters.breakglassAnnotation
  annotation != ""
  input.review.object.metadata.annotations[annotation] == "true"
}

admission {
  input.review.operation != ""
}

suppressed {
  breakglass
  admission
}

note := sprintf(" (admitted through the %v annotation)", [input.parameters.breakglassAnnotation]) {
  breakglass
} else = ""

# The images this review decides (operation rules and image volumes: objects.rego), one key per image.
checked := images.decided_images(input.review, exempt_patterns)

sent := answers.keys(checked)

# An external_data call that produced nothing denies (OPA requires a literal default).
default response := {"responses": [], "errors": [], "status_code": 0, "system_error": "no answer from external_data"}

response := external_data({"provider": "sigwarden", "keys": sent}) {
  count(sent) > 0
}

violation[{"msg": msg, "details": {"image": image, "reason": reason}}] {
  not suppressed
  answers.system_error(response) != ""
  not answers.excused_system_error(response, allow_on_error)
  image := sent[_]
  reason := sprintf("provider error: %v", [answers.system_error(response)])
  msg := sprintf("%vimage %v is not attested: %v%v", [prefix, image, reason, note])
}

violation[{"msg": msg, "details": {"image": image, "reason": reason}}] {
  not suppressed
  entry := object.get(response, "errors", [])[_]
  image := entry[0]
  not answers.excused_item_error(entry[1], allow_on_error)
  reason := sprintf("could not be verified: %v", [entry[1]])
  msg := sprintf("%vimage %v is not attested: %v%v", [prefix, image, reason, note])
}

violation[{"msg": msg, "details": {"image": image, "reason": reason}}] {
  not suppressed
  image := answers.unanswered(response, sent)[_]
  reason := "the provider's answer left it out"
  msg := sprintf("%vimage %v is not attested: %v%v", [prefix, image, reason, note])
}

violation[{"msg": msg, "details": {"image": image, "reason": reason, "digest": facts.digest}}] {
  not suppressed
  entry := object.get(response, "responses", [])[_]
  image := entry[0]
  facts := entry[1]
  # The provider's normal form decides too, so no spelling of an exempt image is checked.
  not images.exempt_reference(object.get(facts, "reference", ""), exempt_patterns)
  reason := unattested(facts)
  msg := sprintf("%vimage %v is not attested: %v%v", [prefix, image, reason, note])
}

# A notation signature at the trust policy's audit level is "verified" even when its authenticity failed
# (notation only logs it; Ratify's isSuccess keeps that). It vouches for its authority here only when the
# constraint opts in with acceptAuditLevel.
audit_only(s) {
  s.checks.authenticity == "logged"
}

counts(s) {
  s.verified
  accept_audit_level
}

counts(s) {
  s.verified
  not audit_only(s)
}

vouching(facts) := {s.authority | s := facts.signatures[_]; counts(s)}

# An image the provider answered for, but not with what this constraint requires.
unattested(facts) := reason {
  count(required_authorities) == 0
  count(vouching(facts)) == 0
  reason := why_not(facts)
}

unattested(facts) := reason {
  count(required_authorities) > 0
  not input.parameters.requireAll
  count(required_authorities & vouching(facts)) == 0
  reason := sprintf("not verified by any of %v%v", [sort_set(required_authorities), detail(facts)])
}

unattested(facts) := reason {
  count(required_authorities) > 0
  input.parameters.requireAll
  missing := required_authorities - vouching(facts)
  count(missing) > 0
  reason := sprintf("missing attestation by %v%v", [sort_set(missing), detail(facts)])
}

why_not(facts) := facts.reason {
  facts.reason != ""
} else := audit_level_reason(facts)

audit_level_reason(facts) := sprintf("signed only at the notation audit level, authenticity failed (%v); set acceptAuditLevel to accept", [concat("; ", reasons)]) {
  reasons := [sprintf("%v: %v", [s.authority, concat(", ", s.warnings)]) |
    s := facts.signatures[_]
    s.verified
    audit_only(s)
  ]
}

# Why, in the constraint's own terms: the listed authorities' rejections when there are any, else the
# provider's one-sentence reason.
detail(facts) := sprintf(" (%v)", [concat("; ", reasons)]) {
  reasons := [sprintf("%v: %v", [s.authority, s.reason]) |
    s := facts.signatures[_]
    required_authorities[s.authority]
    s.reason != ""
  ]
  count(reasons) > 0
} else = sprintf(" (%v)", [facts.reason]) {
  facts.reason != ""
} else = sprintf(" (%v)", [audit_level_reason(facts)]) {
  count([s | s := facts.signatures[_]; s.verified; audit_only(s)]) > 0
} else = ""

sort_set(s) := concat(", ", sort([x | x := s[_]]))

# --- multi-arch: an index is verified by its own signature; platformSignatures "every" or a list of
# platforms also requires a signature on each (listed) platform manifest. BuildKit's attestation
# manifests (unknown/unknown) are never platforms.

platform_name(p) := concat("/", [p.os, p.architecture]) {
  p.variant == ""
} else := concat("/", [p.os, p.architecture, p.variant])

required_platform(p) {
  input.parameters.platformSignatures == "every"
  not p.attestationManifest
}

required_platform(p) {
  not p.attestationManifest
  listed := {name | name := input.parameters.platforms[_]}
  count({platform_name(p), concat("/", [p.os, p.architecture])} & listed) > 0
}

platform_vouching(p) := {a | a := object.get(p, "authorities", [])[_]}

platform_unattested(p) := object.get(p, "reason", "not checked") {
  count(required_authorities) == 0
  not object.get(p, "verified", false)
} else := sprintf("not verified by any of %v", [sort_set(required_authorities)]) {
  count(required_authorities) > 0
  not input.parameters.requireAll
  count(required_authorities & platform_vouching(p)) == 0
} else := sprintf("missing attestation by %v", [sort_set(required_authorities - platform_vouching(p))]) {
  count(required_authorities) > 0
  input.parameters.requireAll
  count(required_authorities - platform_vouching(p)) > 0
}

violation[{"msg": msg, "details": {"image": image, "reason": reason, "digest": p.digest}}] {
  not suppressed
  entry := object.get(response, "responses", [])[_]
  image := entry[0]
  facts := entry[1]
  not images.exempt_reference(object.get(facts, "reference", ""), exempt_patterns)
  p := object.get(facts, "platforms", [])[_]
  required_platform(p)
  why := platform_unattested(p)
  reason := sprintf("platform %v (%v) is not signed: %v", [platform_name(p), p.digest, why])
  msg := sprintf("%vimage %v is not attested: %v%v", [prefix, image, reason, note])
}
