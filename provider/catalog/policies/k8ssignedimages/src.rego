package k8ssignedimages

import future.keywords.in

import data.lib.sigwarden.images

default allow_on_error := false

allow_on_error := input.parameters.allowOnError

required_authorities := {a | a := input.parameters.authorities[_]}

exempt_patterns := object.get(input.parameters, "exemptImages", [])

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

checked := images.checked_images(input.review.object, exempt_patterns)

response := external_data({"provider": "sigwarden", "keys": checked}) {
  count(checked) > 0
}

violation[{"msg": msg, "details": {"image": image, "reason": reason}}] {
  not suppressed
  response.system_error != ""
  not allow_on_error
  image := checked[_]
  reason := sprintf("provider error: %v", [response.system_error])
  msg := sprintf("%vimage %v is not attested: %v%v", [prefix, image, reason, note])
}

violation[{"msg": msg, "details": {"image": image, "reason": reason}}] {
  not suppressed
  not allow_on_error
  entry := object.get(response, "errors", [])[_]
  image := entry[0]
  reason := sprintf("could not be verified: %v", [entry[1]])
  msg := sprintf("%vimage %v is not attested: %v%v", [prefix, image, reason, note])
}

violation[{"msg": msg, "details": {"image": image, "reason": reason, "digest": facts.digest}}] {
  not suppressed
  entry := object.get(response, "responses", [])[_]
  image := entry[0]
  facts := entry[1]
  reason := unattested(facts)
  msg := sprintf("%vimage %v is not attested: %v%v", [prefix, image, reason, note])
}

# An image the provider answered for, but not with what this constraint requires.
unattested(facts) := reason {
  count(required_authorities) == 0
  not facts.verified
  reason := facts.reason
}

unattested(facts) := reason {
  count(required_authorities) > 0
  not input.parameters.requireAll
  count(required_authorities & {a | a := facts.authorities[_]}) == 0
  reason := sprintf("not verified by any of %v%v", [sort_set(required_authorities), detail(facts)])
}

unattested(facts) := reason {
  count(required_authorities) > 0
  input.parameters.requireAll
  missing := required_authorities - {a | a := facts.authorities[_]}
  count(missing) > 0
  reason := sprintf("missing attestation by %v%v", [sort_set(missing), detail(facts)])
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
} else = ""

sort_set(s) := concat(", ", sort([x | x := s[_]]))
