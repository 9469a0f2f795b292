{{/* The release's full name, used as the prefix of every object. */}}
{{- define "tflow.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "tflow.labels" -}}
app.kubernetes.io/part-of: temporal-flow
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The image of a component: its own `image` values over the chart-wide ones. */}}
{{- define "tflow.image" -}}
{{- $root := index . 0 -}}
{{- $own := index . 1 | default dict -}}
{{- $repo := $own.repository | default $root.Values.image.repository -}}
{{- $tag := $own.tag | default $root.Values.image.tag | default $root.Chart.AppVersion -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}

{{- define "tflow.serviceAccountName" -}}
{{- .Values.serviceAccount.name | default (printf "%s-operator" (include "tflow.fullname" .)) -}}
{{- end -}}

{{/* Environment every component shares: where Temporal is. */}}
{{- define "tflow.temporalEnv" -}}
- name: TEMPORAL_ADDRESS
  value: {{ .Values.temporal.address | quote }}
- name: TEMPORAL_NAMESPACE
  value: {{ .Values.temporal.namespace | quote }}
{{- with .Values.temporal.namespaces }}
- name: TFLOW_TEMPORAL_NAMESPACES
  value: {{ toJson . | quote }}
{{- end }}
{{- end -}}

{{- define "tflow.podSecurity" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end -}}

{{/* The only writable place in a container: the image keeps HOME and its working
directory in /tmp, and the root file system is read-only. */}}
{{- define "tflow.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpVolume.sizeLimit | quote }}
{{- end -}}
