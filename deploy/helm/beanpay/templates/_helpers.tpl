{{- define "beanpay.name" -}}beanpay{{- end -}}

{{- define "beanpay.fullname" -}}{{ .Release.Name }}-{{ .Values.region }}{{- end -}}

{{- define "beanpay.labels" -}}
app.kubernetes.io/name: beanpay
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
beanpay.io/region: {{ .Values.region | quote }}
{{- end -}}

{{- define "beanpay.selector" -}}
app.kubernetes.io/name: beanpay
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "beanpay.secretName" -}}
{{- if .Values.secrets.existingSecret -}}{{ .Values.secrets.existingSecret }}{{- else -}}{{ include "beanpay.fullname" . }}-secrets{{- end -}}
{{- end -}}
