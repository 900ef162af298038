package lib.sigwarden.objects

import future.keywords.in

# --- images of an object ----------------------------------------------------------------------------------
# Every image a node pulls for a Pod: the three container lists and image volumes (KEP-4639,
# spec.volumes[].image.reference), as policy-controller's validatePodSpec checks them
# (sigstore/policy-controller pkg/webhook/validator.go: checkContainers, checkEphemeralContainers,
# checkVolumeImages).

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

# A blank image (`""`, `" "`) names nothing to pull: pod templates carry it as a placeholder that an image
# trigger fills in later (that change is an UPDATE with the real image, checked then). The API server
# refuses a Pod whose image has surrounding blanks (kubernetes pkg/apis/core/validation,
# validateContainersOnlyForPod), so no Pod ever runs one; policy-controller likewise skips an image volume
# without a reference.
blank(image) {
  trim_space(image) == ""
}

spec_images(spec) := {image |
  field := container_fields[_]
  image := spec[field][_].image
  is_string(image)
  not blank(image)
} | {image |
  image := spec.volumes[_].image.reference
  is_string(image)
  not blank(image)
}

# Every image of the object, without duplicates; empty for kinds without a pod spec.
images(obj) := {image |
  spec := pod_spec(obj)
  image := spec_images(spec)[_]
}

# --- which images an admission review decides ----------------------------------------------------------------
# Gatekeeper's audit reviews carry no operation: they report every image of every object. At admission:
# - DELETE is never denied on image grounds, nor any update of an object being deleted (a finalizer being
#   removed): policy-controller skips both (pkg/webhook/validator.go, isDeletedOrStatusUpdate);
# - UPDATE decides only the images the object did not have before (oldObject): scaling, a label, a
#   scale-down of an old ReplicaSet, or removing a container add none and are never denied, while a new
#   image, an ephemeral container added through pods/ephemeralcontainers (kubectl debug) or an image volume
#   is decided like at CREATE.

operation(review) := object.get(review, "operation", "")

admission(review) {
  operation(review) != ""
}

terminating(obj) {
  object.get(object.get(obj, "metadata", {}), "deletionTimestamp", null) != null
}

never_denied(review) {
  operation(review) == "DELETE"
}

never_denied(review) {
  admission(review)
  terminating(review.object)
}

previous_images(review) := images(review.oldObject) {
  operation(review) == "UPDATE"
  review.oldObject != null
} else := set()

# The images this review decides (a set).
review_images(review) := set() {
  never_denied(review)
} else := images(review.object) - previous_images(review)
