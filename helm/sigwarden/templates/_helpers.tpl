{{- define "sigwarden.fullname" -}}
{{- if contains "sigwarden" .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else -}}{{ printf "%s-sigwarden" .Release.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "sigwarden.labels" -}}
app.kubernetes.io/name: sigwarden
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "sigwarden.selectorLabels" -}}
app.kubernetes.io/name: sigwarden
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "sigwarden.tlsSecret" -}}
{{- .Values.tls.existingSecret | default (printf "%s-tls" (include "sigwarden.fullname" .)) -}}
{{- end -}}

{{- define "sigwarden.serviceHost" -}}
{{ include "sigwarden.fullname" . }}.{{ .Release.Namespace }}.svc
{{- end -}}

{{- define "sigwarden.image" -}}
"{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
{{- end -}}

{{- /* "true" when the pod runs the certificate keeper: it issues the serving certificate or copies the client CA. */ -}}
{{- define "sigwarden.certsKeeper" -}}
{{- if or (eq .Values.tls.mode "pod") (and .Values.mtls.enabled (eq .Values.mtls.clientCA.source "webhook")) }}true{{ end -}}
{{- end -}}

{{- /*
Provider.spec.timeout (whole seconds) for the validating (verify) Provider: at most the validating webhook's
timeout minus one second, so a provider that hangs makes Gatekeeper's call fail inside the webhook (Rego sees
system_error and denies) instead of the whole webhook timing out (under failurePolicy Ignore: admitted).
The values schema enforces it too; this message names both values.
*/ -}}
{{- define "sigwarden.verifyTimeout" -}}
{{- $timeout := int .Values.provider.timeout -}}
{{- $webhook := int .Values.gatekeeper.validatingWebhookTimeoutSeconds -}}
{{- if gt $timeout (sub $webhook 1) -}}
{{- fail (printf "provider.timeout (%ds) must be at most gatekeeper.validatingWebhookTimeoutSeconds minus one (%ds): otherwise the webhook itself times out and, with failurePolicy Ignore, admits the pod unverified" $timeout (sub $webhook 1)) -}}
{{- end -}}
{{- $timeout -}}
{{- end -}}

{{- /*
The mutation Provider's timeout. Gatekeeper's mutating webhook times out after 1 s by default and caps the
provider call at what is left of the admission deadline: with 1 s the Provider timeout is 1 s and the provider
answers within mutation.deadline (500 ms); with 2 s or more it is one second less than the webhook's.
*/ -}}
{{- define "sigwarden.mutateTimeout" -}}
{{- $webhook := int .Values.gatekeeper.mutatingWebhookTimeoutSeconds -}}
{{- max 1 (min (int .Values.provider.timeout) (sub $webhook 1)) -}}
{{- end -}}

{{- /* The provider answers 500 ms before its Provider's timeout: verify under server.requestDeadline. */ -}}
{{- define "sigwarden.requestDeadline" -}}
{{ sub (mul (int (include "sigwarden.verifyTimeout" .)) 1000) 500 }}ms
{{- end -}}

{{- /* ... and mutate under mutation.deadline, inside the mutating webhook's own timeout as well. */ -}}
{{- define "sigwarden.mutationDeadline" -}}
{{- $budget := min (int (include "sigwarden.mutateTimeout" .)) (int .Values.gatekeeper.mutatingWebhookTimeoutSeconds) -}}
{{ sub (mul $budget 1000) 500 }}ms
{{- end -}}

{{- /* Labels of constraints: no managed-by, since the delivery Job may apply them rather than Helm. */ -}}
{{- define "sigwarden.constraintLabels" -}}
{{ include "sigwarden.selectorLabels" . }}
app.kubernetes.io/component: policy
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{- /* A service account token for the one container that talks to the API server (the pod mounts none). */ -}}
{{- define "sigwarden.kubeApiVolume" -}}
- name: kube-api
  projected:
    sources:
      - serviceAccountToken: {path: token, expirationSeconds: 3607}
      - configMap: {name: kube-root-ca.crt, items: [{key: ca.crt, path: ca.crt}]}
{{- end -}}

{{- define "sigwarden.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile: {type: RuntimeDefault}
{{- end -}}

{{- define "sigwarden.containerSecurityContext" -}}
runAsNonRoot: true
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities: {drop: ["ALL"]}
seccompProfile: {type: RuntimeDefault}
{{- end -}}

{{/* The Secret holding the shared cache's HMAC key (and Redis password): the user's, or the generated one. */}}
{{- define "sigwarden.sharedCacheSecret" -}}
{{- .Values.sharedCache.existingSecret | default (printf "%s-shared-cache" (include "sigwarden.fullname" .)) -}}
{{- end }}

{{- /* The Secrets and ServiceAccounts the config's stores read through the API (auth.kubernetesSecrets), by
namespace, as JSON: {"ns": {"secrets": [...], "serviceAccounts": [...]}}. Empty when no store reads any. */ -}}
{{- define "sigwarden.secretRefs" -}}
{{- $byNamespace := dict -}}
{{- range .Values.config.stores }}
{{- range (default list (default dict .auth).kubernetesSecrets) }}
{{- $entry := default (dict "secrets" list "serviceAccounts" list) (get $byNamespace .namespace) }}
{{- if .name }}{{ $_ := set $entry "secrets" (append $entry.secrets .name | uniq) }}{{ end }}
{{- if .serviceAccount }}{{ $_ := set $entry "serviceAccounts" (append $entry.serviceAccounts .serviceAccount | uniq) }}{{ end }}
{{- $_ := set $byNamespace .namespace $entry }}
{{- end }}
{{- end }}
{{- if $byNamespace }}{{ toJson $byNamespace }}{{ end -}}
{{- end -}}
