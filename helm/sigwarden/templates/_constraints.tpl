{{- /*
The constraints the policy values ask for, as a YAML list:
- the main K8sSignedImages (policy.enforcementAction) everywhere except excluded, listed and label-chosen
  namespaces, so every namespace is audited by exactly one of them;
- one per action in policy.namespaceOverrides (namespaces the platform team lists; they win over labels);
- one per action in policy.namespaceLabel.actions (namespaces choosing by label);
- K8sDigestPinnedImages when policy.digestPinning.enabled.
*/ -}}
{{- define "sigwarden.constraints" -}}
{{- $p := .Values.policy -}}
{{- $kinds := list (dict "apiGroups" (list "") "kinds" (list "Pod" "ReplicationController"))
                   (dict "apiGroups" (list "apps") "kinds" (list "Deployment" "ReplicaSet" "StatefulSet" "DaemonSet"))
                   (dict "apiGroups" (list "batch") "kinds" (list "Job" "CronJob")) -}}
{{- $params := dict "authorities" $p.authorities "requireAll" $p.requireAll "exemptImages" $p.exemptImages
                    "allowOnError" $p.allowOnError -}}
{{- with $p.breakglassAnnotation }}{{ $_ := set $params "breakglassAnnotation" . }}{{ end -}}
{{- $excluded := concat $p.excludedNamespaces (list .Release.Namespace) | uniq -}}
{{- $listed := keys $p.namespaceOverrides | sortAlpha -}}
{{- $labelKey := $p.namespaceLabel.key -}}
{{- $labelValues := list -}}
{{- if $labelKey }}{{ $labelValues = keys $p.namespaceLabel.actions | sortAlpha }}{{ end -}}
{{- $out := list -}}
{{- /* main */ -}}
{{- $match := dict "kinds" $kinds "excludedNamespaces" (concat $excluded $listed | uniq) -}}
{{- if $labelValues }}
{{- $_ := set $match "namespaceSelector" (dict "matchExpressions" (list (dict "key" $labelKey "operator" "NotIn" "values" $labelValues))) }}
{{- end -}}
{{- $out = append $out (dict "name" "sigwarden-signed-images" "action" $p.enforcementAction "match" $match) -}}
{{- /* listed namespaces, grouped by action */ -}}
{{- $byAction := dict -}}
{{- range $ns := $listed }}
{{- $action := index $p.namespaceOverrides $ns }}
{{- $_ := set $byAction $action (append (get $byAction $action | default list) $ns) }}
{{- end -}}
{{- range $action := keys $byAction | sortAlpha }}
{{- $out = append $out (dict "name" (printf "sigwarden-signed-images-%s" $action) "action" $action
      "match" (dict "kinds" $kinds "namespaces" (index $byAction $action))) }}
{{- end -}}
{{- /* label-chosen namespaces, grouped by action */ -}}
{{- $byLabel := dict -}}
{{- range $value := $labelValues }}
{{- $action := index $p.namespaceLabel.actions $value }}
{{- $_ := set $byLabel $action (append (get $byLabel $action | default list) $value) }}
{{- end -}}
{{- range $action := keys $byLabel | sortAlpha }}
{{- $selector := dict "matchExpressions" (list (dict "key" $labelKey "operator" "In" "values" (index $byLabel $action))) }}
{{- $out = append $out (dict "name" (printf "sigwarden-signed-images-label-%s" $action) "action" $action
      "match" (dict "kinds" $kinds "excludedNamespaces" (concat $excluded $listed | uniq) "namespaceSelector" $selector)) }}
{{- end -}}
{{- $objects := list -}}
{{- range $c := $out }}
{{- $spec := dict "match" $c.match "parameters" $params -}}
{{- if eq $c.action "scoped" }}
{{- $_ := set $spec "enforcementAction" "scoped" }}
{{- $_ := set $spec "scopedEnforcementActions" (list
      (dict "action" "warn" "enforcementPoints" (list (dict "name" "validation.gatekeeper.sh")))
      (dict "action" "dryrun" "enforcementPoints" (list (dict "name" "audit.gatekeeper.sh")))) }}
{{- else }}
{{- $_ := set $spec "enforcementAction" $c.action }}
{{- end }}
{{- $objects = append $objects (dict "apiVersion" "constraints.gatekeeper.sh/v1beta1" "kind" "K8sSignedImages"
      "metadata" (dict "name" $c.name "labels" (include "sigwarden.constraintLabels" $ | fromYaml)) "spec" $spec) }}
{{- end -}}
{{- if $p.digestPinning.enabled }}
{{- $objects = append $objects (dict "apiVersion" "constraints.gatekeeper.sh/v1beta1" "kind" "K8sDigestPinnedImages"
      "metadata" (dict "name" "sigwarden-digest-pinned-images" "labels" (include "sigwarden.constraintLabels" . | fromYaml))
      "spec" (dict "enforcementAction" $p.digestPinning.enforcementAction
                   "match" (dict "kinds" $kinds "excludedNamespaces" $excluded)
                   "parameters" (dict "exemptImages" $p.exemptImages))) }}
{{- end -}}
{{ toYaml $objects }}
{{- end -}}
