{{/* Chart name, truncated to the 63 characters Kubernetes allows in a name. */}}
{{- define "warden.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-chart, unless the release name already contains the chart name. */}}
{{- define "warden.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "warden.selectorLabels" -}}
app.kubernetes.io/name: {{ include "warden.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "warden.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "warden.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "warden.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "warden.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding the hash key, the PostgreSQL password and upstream credentials. */}}
{{- define "warden.secretName" -}}
{{- default (include "warden.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/* Where the shared argument-hash key is mounted; audit.hash_key_file names it. */}}
{{- define "warden.hashKeyDir" -}}/etc/warden/secrets{{- end }}

{{/*
warden.yaml: the user's `config` with the keys the chart owns laid over it. Per-replica values
(audit stream, replica id, advertised URL) are not here: they come from the pod's environment.
*/}}
{{- define "warden.config" -}}
{{- $config := deepCopy .Values.config }}
{{- if hasKey ($config.limits | default dict) "shutdown_grace" }}
{{- fail "set shutdownGraceSeconds, not config.limits.shutdown_grace: the pod's terminationGracePeriodSeconds is derived from it" }}
{{- end }}
{{- if hasKey $config "store" }}
{{- fail "set postgres.url, not config.store: every replica must use the one shared PostgreSQL database" }}
{{- end }}
{{- if not (hasPrefix "postgres" .Values.postgres.url) }}
{{- fail "postgres.url must be a postgres:// or postgresql:// URL: replicas share one PostgreSQL database" }}
{{- end }}
{{- $owned := dict
  "listen" (dict "host" "0.0.0.0" "port" (int .Values.containerPort) "allowed_hosts" .Values.allowedHosts)
  "store" .Values.postgres.url
  "audit" (dict "hash_key_file" (printf "%s/audit-hash.key" (include "warden.hashKeyDir" .)))
  "limits" (dict "shutdown_grace" (printf "%ds" (int .Values.shutdownGraceSeconds)))
}}
{{- toYaml (mustMergeOverwrite $config $owned) }}
{{- end }}

{{/* Env var names of the upstream credentials kept in the Secret. */}}
{{- define "warden.upstreamCredentialNames" -}}
{{- keys .Values.secrets.upstreamCredentials | sortAlpha | join "," }}
{{- end }}
