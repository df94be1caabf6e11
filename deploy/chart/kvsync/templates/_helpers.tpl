{{/* The chart's name. */}}
{{- define "kvsync.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The prefix of every object's name: the release name, with the chart's name when it does not already hold it. */}}
{{- define "kvsync.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else if contains (include "kvsync.name" .) .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "kvsync.name" .) | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The controller's ServiceAccount. */}}
{{- define "kvsync.serviceAccountName" -}}
{{- default (printf "%s-controller" (include "kvsync.fullname" .)) .Values.serviceAccount.name -}}
{{- end -}}

{{/* The user name the API server gives the controller: policies match it. */}}
{{- define "kvsync.userName" -}}
{{- printf "system:serviceaccount:%s:%s" .Release.Namespace (include "kvsync.serviceAccountName" .) -}}
{{- end -}}

{{/* The Secret, in the release namespace, holding the syncHash key. */}}
{{- define "kvsync.hashKeySecret" -}}
{{- printf "%s-sync-hash-key" (include "kvsync.fullname" .) -}}
{{- end -}}

{{- define "kvsync.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kvsync.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end -}}

{{- define "kvsync.labels" -}}
{{ include "kvsync.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* A CEL list literal of the allowed Secret types. */}}
{{- define "kvsync.allowedTypesCEL" -}}
[{{- range $i, $t := .Values.validatingAdmissionPolicies.allowedSecretTypes }}{{ if $i }}, {{ end }}'{{ $t }}'{{- end }}]
{{- end -}}
