{{/* Labels every object of the release carries (Helm's recommended set). */}}
{{- define "ambit.labels" -}}
app.kubernetes.io/part-of: ambit
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* <hub>/<repository>:<tag> for images.<name>; tag falls back to global.tag, then appVersion. */}}
{{- define "ambit.image" -}}
{{- $root := index . 0 -}}
{{- $img := index $root.Values.images (index . 1) -}}
{{- printf "%s/%s:%s" $root.Values.global.hub $img.repository (default (default $root.Chart.AppVersion $root.Values.global.tag) $img.tag) -}}
{{- end -}}

{{/* The controller's address as Istio's agents dial it. */}}
{{- define "ambit.istiodAddress" -}}
istiod.{{ .Release.Namespace }}.svc:15012
{{- end -}}

{{- define "ambit.rootNamespace" -}}
{{ default .Release.Namespace .Values.meshConfig.rootNamespace }}
{{- end -}}

{{/* Extra env (name: value map) as a container env list, names sorted so renders are stable. */}}
{{- define "ambit.extraEnv" -}}
{{- range $k, $v := . }}
- name: {{ $k }}
  value: {{ $v | toString | quote }}
{{- end }}
{{- end -}}

{{- define "ambit.imagePullSecrets" -}}
{{- with .Values.global.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}
