package lib.sigwarden.images

import future.keywords.in

import data.lib.sigwarden.objects

# Every image of the object (see objects.rego): the three container lists and image volumes.
images(obj) := objects.images(obj)

# --- normalised references, as the provider writes them in facts.reference --------------------------------
# Host lowercased, HTTPS default port 443 (on a name that stays a host) and leading port zeros dropped,
# index.docker.io is docker.io, Docker Hub names get library/, no tag and no digest means :latest. An image that cannot be normalised
# (a bad port) has no normal form, so it matches no exemption and the provider rejects it.

looks_like_host(component) {
  contains(component, ".")
} else {
  contains(component, ":")
} else {
  component == "localhost"
} else {
  lower(component) != component
}

host_first(parts) {
  count(parts) > 1
  looks_like_host(parts[0])
}

# Only digits reach to_number (it raises on anything else); a port out of 1..65535 has no normal form.
port_number(port) := to_number(digits) {
  regex.match(`^[0-9]+$`, port)
  digits := trim_left(port, "0")
  regex.match(`^[1-9][0-9]{0,4}$`, digits)
  to_number(digits) <= 65535
}

# 443 is dropped only while the bare name still looks like a host: `myhost:443/x` stays on `myhost:443`,
# never `myhost/x` (a Docker Hub repository).
with_port(name, port) := name {
  port_number(port) == 443
  looks_like_host(name)
} else := sprintf("%s:%d", [name, port_number(port)]) {
  _ := port_number(port)
}

bare_host(host) := "docker.io" {
  host == "index.docker.io"
} else := host

normalized_host(host) := out {
  h := lower(host)
  startswith(h, "[")
  i := indexof(h, "]:")
  i >= 0
  out := with_port(substring(h, 0, i + 1), substring(h, i + 2, -1))
} else := h {
  h := lower(host)
  startswith(h, "[")
} else := bare_host(out) {
  h := lower(host)
  parts := split(h, ":")
  count(parts) == 2
  out := with_port(parts[0], parts[1])
} else := bare_host(h) {
  h := lower(host)
  not contains(h, ":")
}

# Docker Hub's official images live under library/.
hub_path(host, path) := concat("", ["library/", path]) {
  host == "docker.io"
  not contains(path, "/")
  not startswith(path, "*")
} else := path

default_tag(image) := "" {
  contains(image, "@")
} else := "" {
  name_parts := split(image, "/")
  contains(name_parts[count(name_parts) - 1], ":")
} else := ":latest"

normalized(image) := concat("", [host, "/", hub_path(host, path), default_tag(image)]) {
  parts := split(image, "/")
  host_first(parts)
  host := normalized_host(parts[0])
  path := concat("/", array.slice(parts, 1, count(parts)))
}

normalized(image) := concat("", ["docker.io/", hub_path("docker.io", image), default_tag(image)]) {
  not host_first(split(image, "/"))
}

# `registry.example*`, `localhost:50*`, `[::1]*` name a host; `nginx:1.*` is a repository and a tag.
names_a_host(component) {
  name := trim_right(component, "*")
  startswith(name, "[")
} else {
  name := trim_right(component, "*")
  host := split(name, ":")[0]
  contains(host, ".")
} else {
  name := trim_right(component, "*")
  split(name, ":")[0] == "localhost"
}

pattern_host(host) := lower(host) {
  contains(host, "*")
} else := normalized_host(host) {
  true
} else := lower(host)

normalized_pattern(pattern) := pattern {
  pattern == "*"
} else := pattern_host(pattern) {
  not contains(pattern, "/")
  endswith(pattern, "*")
  names_a_host(pattern)
} else := concat("", [host, "/", hub_path(host, path)]) {
  parts := split(pattern, "/")
  host_first(parts)
  host := pattern_host(parts[0])
  path := concat("/", array.slice(parts, 1, count(parts)))
} else := concat("", ["docker.io/", hub_path("docker.io", pattern)])

# A normalised pattern matches a normalised reference: "*" all; a trailing "*" is a prefix; a repository
# matches with any tag or digest; a tag (`repo:tag`) only that tag reference, never `repo:tag@sha256:…`,
# which the runtime pulls by digest whatever the tag says; a digest (`repo@sha256:…`) only that digest,
# spelt with or without a tag.
pattern_matches(reference, pattern) {
  pattern == "*"
}

pattern_matches(reference, pattern) {
  pattern != "*"
  endswith(pattern, "*")
  startswith(reference, trim_suffix(pattern, "*"))
}

pattern_matches(reference, pattern) {
  not endswith(pattern, "*")
  reference == pattern
}

pattern_matches(reference, pattern) {
  not endswith(pattern, "*")
  names_a_repository(pattern)
  startswith(reference, concat("", [pattern, ":"]))
}

pattern_matches(reference, pattern) {
  not endswith(pattern, "*")
  names_a_repository(pattern)
  startswith(reference, concat("", [pattern, "@"]))
}

pattern_matches(reference, pattern) {
  not endswith(pattern, "*")
  pinned := split(pattern, "@")
  count(pinned) == 2
  parts := split(reference, "@")
  count(parts) == 2
  parts[1] == pinned[1]
  untagged(parts[0]) == pinned[0]
}

# No tag and no digest: the last path component has no ":" (a host's port comes before the first "/").
names_a_repository(pattern) {
  not contains(pattern, "@")
  components := split(pattern, "/")
  not contains(components[count(components) - 1], ":")
}

untagged(name) := concat(":", array.slice(parts, 0, count(parts) - 1)) {
  components := split(name, "/")
  last := components[count(components) - 1]
  contains(last, ":")
  parts := split(name, ":")
} else := name

# exemptImages entries are matched against the normalised reference, so `Registry.Example:443/tools/x` is
# exempt exactly when `registry.example/tools/x` is.
exempt_reference(reference, patterns) {
  pattern_matches(reference, normalized_pattern(patterns[_]))
}

exempt(image, patterns) {
  exempt_reference(normalized(image), patterns)
}

# --- kritis allowlists, on the image exactly as the object spells it ----------------------------------------
# kritis (pkg/kritis/util/allowlist.go, imageNamePatternMatch) compares a GenericAttestationPolicy namePattern
# with the image string as written, not normalised: a trailing "*" is a raw prefix whose remainder holds no
# further "/", any other pattern (a "*" elsewhere included) must equal the image. An empty pattern matches nothing.
name_pattern_matches(image, pattern) {
  endswith(pattern, "*")
  head := trim_suffix(pattern, "*")
  startswith(image, head)
  not contains(substring(image, count(head), -1), "/")
}

name_pattern_matches(image, pattern) {
  not endswith(pattern, "*")
  pattern != ""
  image == pattern
}

name_exempt(image, name_patterns) {
  name_pattern_matches(image, name_patterns[_])
}

# The images an admission review decides (objects.review_images: operation rules), less the exempt ones.
decided_images(review, patterns) := sort([image |
  image := objects.review_images(review)[_]
  not exempt(image, patterns)
])

# The same, less the images a kritis name pattern exempts (exemptImageNamePatterns).
decided_images_except(review, patterns, name_patterns) := sort([image |
  image := decided_images(review, patterns)[_]
  not name_exempt(image, name_patterns)
])
