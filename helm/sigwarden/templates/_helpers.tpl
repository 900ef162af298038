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

{{- /* Provider.spec.timeout for the validating (verify) Provider, checked against Gatekeeper's webhook timeout. */ -}}
{{- define "sigwarden.verifyTimeout" -}}
{{- $timeout := int .Values.provider.timeout -}}
{{- if gt $timeout (int .Values.gatekeeper.validatingWebhookTimeoutSeconds) -}}
{{- fail (printf "provider.timeout (%ds) is longer than gatekeeper.validatingWebhookTimeoutSeconds (%ds): Gatekeeper would give up first and, with failurePolicy Ignore, admit the pod unverified" $timeout (int .Values.gatekeeper.validatingWebhookTimeoutSeconds)) -}}
{{- end -}}
{{- $timeout -}}
{{- end -}}

{{- /* The mutating webhook has its own, shorter timeout (1 s in Gatekeeper's chart). */ -}}
{{- define "sigwarden.mutateTimeout" -}}
{{- min (int .Values.provider.timeout) (int .Values.gatekeeper.mutatingWebhookTimeoutSeconds) -}}
{{- end -}}

{{- /* The provider answers 500 ms before the shortest Provider timeout in use. */ -}}
{{- define "sigwarden.requestDeadline" -}}
{{- $shortest := int (include "sigwarden.verifyTimeout" .) -}}
{{- if .Values.mutation.enabled }}{{ $shortest = min $shortest (int (include "sigwarden.mutateTimeout" .)) }}{{ end -}}
{{ sub (mul $shortest 1000) 500 }}ms
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
