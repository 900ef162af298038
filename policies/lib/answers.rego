package lib.sigwarden.answers

import future.keywords.in

import data.lib.sigwarden.images

# --- the keys sent to the provider ------------------------------------------------------------------------
# One key per normalised reference: the smallest spelling of each image stands for all of them, so spelling
# one image many ways (`nginx`, `docker.io/nginx`, `index.docker.io/library/nginx:latest`) costs one key
# and cannot push a request over the provider's maxKeys. The provider's answer for that key decides every
# spelling. A reference with no normal form (a bad port) is its own key; the provider rejects it.

normal_form(image) := normal {
  normal := images.normalized(image)
} else := concat("", ["!", image])

# [normal form, spelling] pairs in order, so the spellings of one image are neighbours.
spellings(imgs) := sort([[normal_form(image), image] | image := imgs[_]])

first_spelling(pairs, i) {
  i == 0
}

first_spelling(pairs, i) {
  i > 0
  pairs[i - 1][0] != pairs[i][0]
}

# Spelling → the key sent for it.
key_of(imgs) := {pair[1]: chosen[pair[0]] |
  pairs := spellings(imgs)
  chosen := {pairs[i][0]: pairs[i][1] | pairs[i]; first_spelling(pairs, i)}
  pair := pairs[_]
}

# The keys to send for a set of images, sorted.
keys(imgs) := sort({key | key := key_of(imgs)[_]})

# --- reading the answer -----------------------------------------------------------------------------------
# `external_data` answers {responses, errors, status_code, system_error}; the templates default `response`
# to one with a system_error, so an external_data call that produced nothing denies too.

system_error(response) := object.get(response, "system_error", "")

# The provider refused the request itself (malformed, over maxKeys or maxBodyBytes): sigwarden says so with
# REQUEST_REFUSED and HTTP 400 (431 for an oversized head), which Gatekeeper passes on as status_code.
# Nothing about the images was learnt, and the object's own content can cause it, so allowOnError never
# covers it.
refused(response) {
  startswith(system_error(response), "REQUEST_REFUSED:")
}

refused(response) {
  response.status_code in {400, 413, 431}
}

# allowOnError covers an unavailable provider (transport failure, starting, overloaded, TIMEOUT) ...
excused_system_error(response, allow_on_error) {
  allow_on_error == true
  not refused(response)
}

# ... and an image the registry could not serve; never a reference the provider could not parse.
excused_item_error(error, allow_on_error) {
  allow_on_error == true
  not startswith(error, "INVALID_REFERENCE")
}

answered(response, key) {
  object.get(response, "responses", [])[_][0] == key
}

answered(response, key) {
  object.get(response, "errors", [])[_][0] == key
}

# Keys sent without an answer or error, while the provider reported no system error: a provider must answer
# every key, so Rego does not rely on it and denies them.
unanswered(response, sent) := {key |
  system_error(response) == ""
  key := sent[_]
  not answered(response, key)
}
