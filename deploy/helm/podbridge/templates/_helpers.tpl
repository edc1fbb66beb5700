{{/* The objects' name: the release name, or RELEASE-podbridge when it does not say podbridge. */}}
{{- define "podbridge.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "podbridge.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: ssh
{{- end -}}

{{- define "podbridge.labels" -}}
{{ include "podbridge.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "podbridge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "podbridge.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name: name the existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "podbridge.hostKeysSecret" -}}
{{- if .Values.hostKeys.existingSecret -}}
{{- .Values.hostKeys.existingSecret -}}
{{- else -}}
{{- printf "%s-host-keys" (include "podbridge.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "podbridge.policyConfigMap" -}}
{{- if .Values.policy.existingConfigMap -}}
{{- .Values.policy.existingConfigMap -}}
{{- else -}}
{{- printf "%s-policy" (include "podbridge.fullname" .) -}}
{{- end -}}
{{- end -}}
