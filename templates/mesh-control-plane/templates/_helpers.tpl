{{/* The mesh version: .Values.version, else the chart's appVersion. */}}
{{- define "mesh.version" -}}
{{- .Values.version | default .Chart.AppVersion -}}
{{- end -}}

{{/* The image tag: .Values.image.tag, else the mesh version. */}}
{{- define "mesh.imageTag" -}}
{{- .Values.image.tag | default (include "mesh.version" .) -}}
{{- end -}}

{{- define "mesh.controllerImage" -}}
{{- printf "%s/%s:%s" .Values.image.registry .Values.controller.image (include "mesh.imageTag" .) -}}
{{- end -}}

{{- define "mesh.proxyImage" -}}
{{- printf "%s/%s:%s" .Values.image.registry .Values.proxy.image (include "mesh.imageTag" .) -}}
{{- end -}}

{{/* Labels of every object. Call with (dict "root" $ "component" "identity"); component may be empty. */}}
{{- define "mesh.labels" -}}
app.kubernetes.io/part-of: mesh
app.kubernetes.io/version: {{ include "mesh.version" .root | quote }}
{{- with .component }}
app.kubernetes.io/name: mesh-{{ . }}
app.kubernetes.io/component: {{ . }}
meshplane.io/control-plane-component: {{ . }}
{{- end }}
meshplane.io/control-plane-ns: {{ .root.Release.Namespace }}
{{- end -}}

{{/* Selector labels of a component's pods: stable across versions. Call with (dict "root" $ "component" "identity"). */}}
{{- define "mesh.selectorLabels" -}}
app.kubernetes.io/name: mesh-{{ .component }}
meshplane.io/control-plane-ns: {{ .root.Release.Namespace }}
{{- end -}}

{{/* Cluster-scoped names carry the namespace so two installs do not collide. */}}
{{- define "mesh.clusterName" -}}
{{- printf "mesh-%s-%s" .root.Release.Namespace .name -}}
{{- end -}}

{{/* The control-plane components: name, gRPC or HTTPS port, admin port. */}}
{{- define "mesh.components" -}}
identity: {port: 8080, portName: grpc, adminPort: 9990}
destination: {port: 8086, portName: grpc, adminPort: 9996}
injector: {port: 8443, portName: webhook, adminPort: 9995}
{{- end -}}

{{/* The values recorded in the mesh-config ConfigMap: everything but the issuer's private key. */}}
{{- define "mesh.recordedValues" -}}
{{- $v := deepCopy .Values -}}
{{- $_ := unset $v.identity.issuer.tls "keyPEM" -}}
{{- $_ := set $v "namespace" .Release.Namespace -}}
{{- toYaml $v -}}
{{- end -}}

{{/* The prometheus values over their defaults (values.yaml has no prometheus key, so
that a render without it records the same values as before; values.schema.json gives
the same defaults). */}}
{{- define "mesh.prometheus" -}}
{{- $d := dict "enabled" false "image" "quay.io/prometheus/prometheus:v2.53.0" "retention" "6h" "scrapeInterval" "10s" "resources" (dict "requests" (dict "cpu" "100m" "memory" "1Gi") "limits" (dict "memory" "2Gi")) "podMonitor" (dict "enabled" false "labels" (dict)) -}}
{{- toYaml (mergeOverwrite $d (deepCopy (.Values.prometheus | default dict))) -}}
{{- end -}}

{{/* The shared relabelling (files/prometheus-relabel.yaml) in the Prometheus Operator's
spelling, for a PodMonitor: call with (dict "rules" LIST). */}}
{{- define "mesh.prometheus.operatorRelabelings" -}}
{{- $out := list -}}
{{- range .rules -}}
{{- $r := dict -}}
{{- with .source_labels }}{{ $_ := set $r "sourceLabels" . }}{{ end -}}
{{- with .action }}{{ $_ := set $r "action" . }}{{ end -}}
{{- with .regex }}{{ $_ := set $r "regex" . }}{{ end -}}
{{- with .target_label }}{{ $_ := set $r "targetLabel" . }}{{ end -}}
{{- $out = append $out $r -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* Prometheus's configuration: scrape every proxy's admin port through
kubernetes_sd, relabelled by files/prometheus-relabel.yaml. Call with (dict "root" $ "p" PROMETHEUS-VALUES). */}}
{{- define "mesh.prometheus.config" -}}
global:
  scrape_interval: {{ .p.scrapeInterval }}
  evaluation_interval: {{ .p.scrapeInterval }}
rule_files:
  - /etc/prometheus/recording-rules.yml
scrape_configs:
  - job_name: mesh-proxy
    kubernetes_sd_configs:
      - role: pod
    {{- .root.Files.Get "files/prometheus-relabel.yaml" | nindent 4 }}
{{- end -}}
