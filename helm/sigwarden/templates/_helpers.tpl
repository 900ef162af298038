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

{{- /* Provider timeout in seconds minus 500 ms: the provider answers before Gatekeeper gives up. */ -}}
{{- define "sigwarden.requestDeadline" -}}
{{ sub (mul (int .Values.provider.timeout) 1000) 500 }}ms
{{- end -}}
