package k8sratifyverification

# Reads only what Ratify's provider answers: responses[i] = [image, {"isSuccess": bool,
# "verifierReports": [...]}], plus errors and system_error.

images := {image |
  spec := input.review.object.spec
  containers := array.concat(object.get(spec, "containers", []), object.get(spec, "initContainers", []))
  image := containers[_].image
}

response := external_data({"provider": "ratify-provider", "keys": [image | image := images[_]]}) {
  count(images) > 0
}

violation[{"msg": msg}] {
  response.system_error != ""
  msg := sprintf("System error calling external data provider: %s", [response.system_error])
}

violation[{"msg": msg}] {
  error := response.errors[_]
  msg := sprintf("Error validating image %s: %s", [error[0], error[1]])
}

violation[{"msg": msg}] {
  subject := response.responses[_]
  subject[1].isSuccess == false
  reports := [r.message | r := subject[1].verifierReports[_]; r.isSuccess == false]
  msg := sprintf("Subject failed verification: %s (%s)", [subject[0], concat("; ", reports)])
}
