package k8ssignedimages

import future.keywords.in

import data.lib.sigwarden.answers
import data.lib.sigwarden.images
import data.lib.sigwarden.platforms
import data.lib.sigwarden.vouching

default allow_on_error := false

allow_on_error := input.parameters.allowOnError

required_authorities := {a | a := input.parameters.authorities[_]}

exempt_patterns := object.get(input.parameters, "exemptImages", [])

name_patterns := object.get(input.parameters, "exemptImageNamePatterns", [])

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
checked := images.decided_images_except(input.review, exempt_patterns, name_patterns)

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

# A notation trust policy statement at level skip verifies nothing (notation-go reports success without
# checking a signature): its authority vouches here only when the constraint opts in with acceptSkipLevel.
default accept_skip_level := false

accept_skip_level := input.parameters.acceptSkipLevel

skip_vouching(facts) := {s.authority | accept_skip_level; s := object.get(facts, "skipped", [])[_]}

vouching(facts) := vouching.authorities(facts, accept_audit_level) | skip_vouching(facts)

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
# platforms also requires a signature on each (listed) platform manifest. Names are compared in
# containerd's normal form, and an index entry without a platform is required for every listed platform.
# BuildKit's attestation manifests (unknown/unknown) are never platforms.

listed_platforms := object.get(input.parameters, "platforms", [])

required_platform(p) {
  input.parameters.platformSignatures == "every"
  platforms.runnable(p)
}

required_platform(p) {
  count(listed_platforms) > 0
  platforms.named(p, listed_platforms)
}

platform_vouching(p) := vouching.authorities(p, accept_audit_level)

platform_unattested(p) := object.get(p, "reason", "not checked") {
  count(required_authorities) == 0
  not object.get(p, "verified", false)
} else := sprintf("signed only at the notation audit level, authenticity failed (%v); set acceptAuditLevel to accept", [sort_set(vouching.audit_level(p))]) {
  count(required_authorities) == 0
  count(platform_vouching(p)) == 0
} else := sprintf("not verified by any of %v", [sort_set(required_authorities)]) {
  count(required_authorities) > 0
  not input.parameters.requireAll
  count(required_authorities & platform_vouching(p)) == 0
} else := sprintf("missing attestation by %v", [sort_set(required_authorities - platform_vouching(p))]) {
  count(required_authorities) > 0
  input.parameters.requireAll
  count(required_authorities - platform_vouching(p)) > 0
}

violation[{"msg": msg, "details": {"image": image, "reason": reason}}] {
  not suppressed
  input.parameters.platformSignatures == "every"
  entry := object.get(response, "responses", [])[_]
  image := entry[0]
  facts := entry[1]
  not images.exempt_reference(object.get(facts, "reference", ""), exempt_patterns)
  platforms.omitted(facts) > 0
  reason := sprintf("%v platform manifest(s) of the index not checked: over the provider's limit of %v per index",
                    [platforms.omitted(facts), facts.platformLimit.maxPlatforms])
  msg := sprintf("%vimage %v is not attested: %v%v", [prefix, image, reason, note])
}

violation[{"msg": msg, "details": {"image": image, "reason": reason}}] {
  not suppressed
  entry := object.get(response, "responses", [])[_]
  image := entry[0]
  facts := entry[1]
  not images.exempt_reference(object.get(facts, "reference", ""), exempt_patterns)
  platforms.omitted(facts) > 0
  name := input.parameters.platforms[_]
  not platforms.listed(facts, name)
  reason := sprintf("platform %v is not among the %v platform manifests checked (%v more not checked)",
                    [name, facts.platformLimit.maxPlatforms, platforms.omitted(facts)])
  msg := sprintf("%vimage %v is not attested: %v%v", [prefix, image, reason, note])
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
  reason := sprintf("platform %v (%v) is not signed: %v", [platforms.name(p), p.digest, why])
  msg := sprintf("%vimage %v is not attested: %v%v", [prefix, image, reason, note])
}

# A platform name the constraint gives that is not os/architecture[/variant] cannot be matched: deny
# rather than silently require nothing.
violation[{"msg": msg, "details": {"image": image, "reason": reason}}] {
  not suppressed
  spec := listed_platforms[_]
  platforms.invalid(spec)
  image := checked[_]
  reason := sprintf("parameter platforms entry %v is not os/architecture[/variant]", [spec])
  msg := sprintf("%vimage %v is not attested: %v%v", [prefix, image, reason, note])
}
