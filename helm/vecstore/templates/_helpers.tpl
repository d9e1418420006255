{{/*
Names, labels, the image, and the cluster spec. The spec is the one document every
process reads (cluster/spec.py); it is built here once and only here.
*/}}

{{- define "vecstore.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "vecstore.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "vecstore.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "vecstore.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vecstore.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "vecstore.labels" -}}
helm.sh/chart: {{ include "vecstore.chart" . }}
{{ include "vecstore.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: vecstore
{{- end -}}

{{/*
A shard's StatefulSet name. Kept at most 52 characters: a StatefulSet adds a
10-character revision hash to its name in a label value (63 at most).
Call with (dict "root" $ "shard" N).
*/}}
{{- define "vecstore.shardName" -}}
{{- printf "%s-shard-%d" (include "vecstore.fullname" .root | trunc 40 | trimSuffix "-") (int .shard) -}}
{{- end -}}

{{/* The headless Service that gives every node pod a stable DNS name. */}}
{{- define "vecstore.nodeServiceName" -}}
{{- printf "%s-node" (include "vecstore.fullname" . | trunc 58 | trimSuffix "-") -}}
{{- end -}}

{{- define "vecstore.routerName" -}}
{{- printf "%s-router" (include "vecstore.fullname" . | trunc 56 | trimSuffix "-") -}}
{{- end -}}

{{- define "vecstore.ingestName" -}}
{{- printf "%s-ingest" (include "vecstore.fullname" . | trunc 56 | trimSuffix "-") -}}
{{- end -}}

{{- define "vecstore.specName" -}}
{{- printf "%s-spec" (include "vecstore.fullname" . | trunc 58 | trimSuffix "-") -}}
{{- end -}}

{{- define "vecstore.secretName" -}}
{{- default (include "vecstore.fullname" .) .Values.auth.existingSecret -}}
{{- end -}}

{{- define "vecstore.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "vecstore.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "vecstore.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Where the spec and the secrets are mounted in every container. */}}
{{- define "vecstore.specPath" -}}/etc/vecstore/spec/cluster.json{{- end -}}
{{- define "vecstore.secretDir" -}}/etc/vecstore/secret{{- end -}}

{{/*
The cluster spec, in the format cluster/spec.py parses:
  {"router": {"listen": ..., <router.settings>},
   "shards": [{"id": 0, "nodes": [{"id", "raft", "http"}, ...]}, ...]}
A node's id is its pod name (`--node-id $(POD_NAME)`), and its addresses are the pod's
DNS name under the headless Service with the ports its container opens.
*/}}
{{- define "vecstore.clusterSpec" -}}
{{- $service := include "vecstore.nodeServiceName" . -}}
{{- $shards := list -}}
{{- range $shard := until (int .Values.shards.count) -}}
{{- $statefulSet := include "vecstore.shardName" (dict "root" $ "shard" $shard) -}}
{{- $nodes := list -}}
{{- range $ordinal := until (int $.Values.shards.replicas) -}}
{{- $pod := printf "%s-%d" $statefulSet $ordinal -}}
{{- $host := printf "%s.%s.%s.svc.%s" $pod $service $.Release.Namespace $.Values.clusterDomain -}}
{{- $nodes = append $nodes (dict "id" $pod "raft" (printf "%s:%d" $host (int $.Values.node.raftPort)) "http" (printf "%s:%d" $host (int $.Values.node.httpPort))) -}}
{{- end -}}
{{- $shards = append $shards (dict "id" $shard "nodes" $nodes) -}}
{{- end -}}
{{- $router := mergeOverwrite (deepCopy .Values.router.settings) (dict "listen" (printf "0.0.0.0:%d" (int .Values.router.port))) -}}
{{- toPrettyJson (dict "router" $router "shards" $shards) -}}
{{- end -}}

{{/* Environment variables from a map: (dict "prefix" "VECSTORE_RAFT_" "values" map). */}}
{{- define "vecstore.envFromMap" -}}
{{- range $key, $value := .values }}
{{- $text := toString $value }}
{{- /* numbers from values arrive as float64: print 100000, never 1e+05 */}}
{{- if and (kindIs "float64" $value) (eq $value (float64 (int64 $value))) }}
{{- $text = toString (int64 $value) }}
{{- end }}
- name: {{ printf "%s%s" $.prefix (upper $key) }}
  value: {{ $text | quote }}
{{- end }}
{{- end -}}

{{/* Volumes every VecStore container has: a writable /tmp, the spec, and the TLS Secret. */}}
{{- define "vecstore.commonVolumes" -}}
- name: tmp
  emptyDir:
    {{- with .Values.tmpVolume.sizeLimit }}
    sizeLimit: {{ . }}
    {{- end }}
- name: spec
  configMap:
    name: {{ include "vecstore.specName" . }}
{{- if .Values.tls.enabled }}
- name: tls
  secret:
    secretName: {{ required "tls.existingSecret is required with tls.enabled" .Values.tls.existingSecret }}
    defaultMode: 288 # 0440
{{- end }}
{{- end -}}

{{- define "vecstore.commonVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: spec
  mountPath: /etc/vecstore/spec
  readOnly: true
{{- if .Values.tls.enabled }}
- name: tls
  mountPath: {{ include "vecstore.tlsDir" . }}
  readOnly: true
{{- end }}
{{- end -}}

{{/* Where the TLS Secret is mounted. */}}
{{- define "vecstore.tlsDir" -}}/etc/vecstore/tls{{- end -}}

{{/*
TLS variables: (client: true) the CA a component verifies the nodes with, and (serving:
true) the certificate and key of a component that serves HTTPS.
Call with (dict "root" $ "serving" bool "client" bool).
*/}}
{{- define "vecstore.tlsEnv" -}}
{{- if .root.Values.tls.enabled }}
{{- if .client }}
- name: VECSTORE_TLS_CA_FILE
  value: {{ printf "%s/ca.crt" (include "vecstore.tlsDir" .root) }}
{{- end }}
{{- if .serving }}
- name: VECSTORE_TLS_CERT_FILE
  value: {{ printf "%s/tls.crt" (include "vecstore.tlsDir" .root) }}
- name: VECSTORE_TLS_KEY_FILE
  value: {{ printf "%s/tls.key" (include "vecstore.tlsDir" .root) }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The probes' scheme. */}}
{{- define "vecstore.probeScheme" -}}{{ if .Values.tls.enabled }}HTTPS{{ else }}HTTP{{ end }}{{- end -}}

{{/* Checksum of the spec, so pods restart with the new shape after an upgrade. */}}
{{- define "vecstore.specChecksum" -}}
{{- include "vecstore.clusterSpec" . | sha256sum -}}
{{- end -}}
