package k8sratifyverification

import data.lib.sigwarden.answers
import data.lib.sigwarden.images

# Reads only what Ratify's provider answers: responses[i] = [image, {"isSuccess": bool,
# "verifierReports": [...]}], plus errors and system_error. Which images, and when, follow the library like
# every shipped template: containers, initContainers and ephemeralContainers (as Ratify's own template
# reads them) of Pods and pod templates, image volumes, and the operation rules (objects.rego).

checked := images.decided_images(input.review, [])

sent := answers.keys(checked)

# An external_data call that produced nothing denies (OPA requires a literal default).
default response := {"responses": [], "errors": [], "status_code": 0, "system_error": "no answer from external_data"}

response := external_data({"provider": "ratify-provider", "keys": sent}) {
  count(sent) > 0
}

violation[{"msg": msg}] {
  count(sent) > 0
  response.system_error != ""
  msg := sprintf("System error calling external data provider: %s", [response.system_error])
}

violation[{"msg": msg}] {
  error := response.errors[_]
  msg := sprintf("Error validating image %s: %s", [error[0], error[1]])
}

violation[{"msg": msg}] {
  image := answers.unanswered(response, sent)[_]
  msg := sprintf("Error validating image %s: the provider's answer left it out", [image])
}

violation[{"msg": msg}] {
  subject := response.responses[_]
  subject[1].isSuccess == false
  reports := [r.message | r := subject[1].verifierReports[_]; r.isSuccess == false]
  msg := sprintf("Subject failed verification: %s (%s)", [subject[0], concat("; ", reports)])
}
