package lib.sigwarden.images

import future.keywords.in

# Kinds whose pod template sits at spec.template.spec.
template_kinds := {"Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "ReplicationController"}

container_fields := ["containers", "initContainers", "ephemeralContainers"]

pod_spec(obj) := spec {
  obj.kind == "Pod"
  spec := obj.spec
}

pod_spec(obj) := spec {
  obj.kind in template_kinds
  spec := obj.spec.template.spec
}

pod_spec(obj) := spec {
  obj.kind == "CronJob"
  spec := obj.spec.jobTemplate.spec.template.spec
}

# Every image of the object, from all three container lists, without duplicates.
images(obj) := {image |
  spec := pod_spec(obj)
  field := container_fields[_]
  image := spec[field][_].image
}

# exemptImages entries match exactly, or as a prefix when they end with "*".
exempt(image, patterns) {
  pattern := patterns[_]
  endswith(pattern, "*")
  startswith(image, trim_suffix(pattern, "*"))
}

exempt(image, patterns) {
  pattern := patterns[_]
  not endswith(pattern, "*")
  image == pattern
}

checked_images(obj, patterns) := sort([image |
  image := images(obj)[_]
  not exempt(image, patterns)
])
