package k8sdigestpinnedimages

import data.lib.sigwarden.images

exempt_patterns := object.get(input.parameters, "exemptImages", [])

# The images this review decides: operation rules and image volumes (objects.rego).
violation[{"msg": msg, "details": {"image": image}}] {
  image := images.decided_images(input.review, exempt_patterns)[_]
  not pinned(image)
  msg := sprintf("image %v is not pinned to a digest (use image@sha256:…)", [image])
}

pinned(image) {
  regex.match(`@sha(256:[a-f0-9]{64}|512:[a-f0-9]{128})$`, image)
}
