package lib.sigwarden.platforms

import future.keywords.in

# Platform names in containerd's normal form (containerd/platforms database.go, normalizeOS and
# normalizeArch), the same rules the provider applies to the facts' `platform`: aarch64 and arm64/v8 are
# arm64, x86_64 is amd64, armhf is arm/v7.

normalized_os(os) := "darwin" {
  lower(os) == "macos"
} else := lower(os)

arm64_variants := {"8": "", "v8": "", "v8.0": "", "9": "v9", "9.0": "v9", "v9.0": "v9"}

arm_variants := {"": "v7", "7": "v7", "5": "v5", "6": "v6", "8": "v8"}

normalized_arch(arch, variant) := ["386", ""] {
  lower(arch) == "i386"
} else := ["amd64", ""] {
  lower(arch) in {"x86_64", "x86-64", "amd64"}
  lower(variant) == "v1"
} else := ["amd64", lower(variant)] {
  lower(arch) in {"x86_64", "x86-64", "amd64"}
} else := ["arm64", object.get(arm64_variants, lower(variant), lower(variant))] {
  lower(arch) in {"aarch64", "arm64"}
} else := ["arm", "v7"] {
  lower(arch) == "armhf"
} else := ["arm", "v6"] {
  lower(arch) == "armel"
} else := ["arm", object.get(arm_variants, lower(variant), lower(variant))] {
  lower(arch) == "arm"
} else := [lower(arch), lower(variant)]

normalized(os, arch, variant) := concat("/", [part | part := [normalized_os(os), a[0], a[1]][_]; part != ""]) {
  a := normalized_arch(arch, variant)
}

# A platform of the facts, normalised (the provider writes it; computed here for older facts).
of(p) := p.platform {
  is_string(p.platform)
} else := normalized(object.get(p, "os", ""), object.get(p, "architecture", ""), object.get(p, "variant", ""))

# How messages name a platform manifest.
name(p) := "(no platform in the index)" {
  object.get(p, "platformSpecified", true) == false
} else := of(p)

variant_of(parts) := parts[2] {
  count(parts) > 2
} else := ""

# A constraint's `os/architecture[/variant]`; anything else is not a platform name.
parsed(spec) := {"os": parts[0], "arch": a[0], "variant": a[1], "exact": count(parts) == 3} {
  is_string(spec)
  parts := split(spec, "/")
  count(parts) >= 2
  count(parts) <= 3
  # containerd's specifier characters (platforms.go, specifierRe)
  count([part | part := parts[_]; not regex.match(`^[A-Za-z0-9_.-]+$`, part)]) == 0
  a := normalized_arch(parts[1], variant_of(parts))
}

invalid(spec) {
  not parsed(spec)
}

# A platform manifest a node of the named platform may run: an index entry without a platform is a candidate
# for every platform; otherwise OS and architecture equal after normalisation, and the variant too when the
# name gives one (`linux/arm` names every arm variant, `linux/arm/v7` one).
matches(p, spec) {
  object.get(p, "platformSpecified", true) == false
  parsed(spec)
}

matches(p, spec) {
  want := parsed(spec)
  got := split(of(p), "/")
  got[0] == normalized_os(want.os)
  got[1] == want.arch
  not want.exact
}

matches(p, spec) {
  want := parsed(spec)
  got := split(of(p), "/")
  got[0] == normalized_os(want.os)
  got[1] == want.arch
  want.exact
  variant_of(got) == want.variant
}

# A real platform (BuildKit's unknown/unknown attestation manifests are not).
runnable(p) {
  not p.attestationManifest
}

# The platform manifests a constraint names: all of them when `names` is empty.
named(p, names) {
  runnable(p)
  count(names) == 0
}

named(p, names) {
  runnable(p)
  matches(p, names[_])
}

# The provider checks (and lists) only the first platformLimit.maxPlatforms platform manifests of an index:
# how many it left out (their signatures and content are unknown), and whether a named platform is among
# those it listed.
omitted(facts) := object.get(object.get(facts, "platformLimit", {}), "omitted", 0)

listed(facts, name) {
  p := object.get(facts, "platforms", [])[_]
  named(p, [name])
}
