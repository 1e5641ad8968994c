{{/* The chart name, or nameOverride. */}}
{{- define "twitter-system.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name, used as the prefix of every resource name. */}}
{{- define "twitter-system.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "twitter-system.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "twitter-system.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* The standard labels on every object the chart renders. */}}
{{- define "twitter-system.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "twitter-system.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: twitter-system
{{- end }}

{{/* The operator pod's selector labels; immutable once installed. */}}
{{- define "twitter-system.operatorSelectorLabels" -}}
app.kubernetes.io/name: {{ include "twitter-system.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "twitter-system.operatorName" -}}
{{- printf "%s-operator" (include "twitter-system.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "twitter-system.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "twitter-system.operatorName" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "twitter-system.systemName" -}}
{{- /* The operator accepts names of at most 34 characters (children's names must fit). */ -}}
{{- default (include "twitter-system.fullname" .) .Values.twitterSystem.name | trunc 34 | trimSuffix "-" }}
{{- end }}

{{- define "twitter-system.backupClaimName" -}}
{{- printf "%s-backups" (include "twitter-system.systemName" .) }}
{{- end }}
