{{/*
The destination Deployment's additions to the shared controller pod template
(deployments.yaml includes them for the destination component only). Destination
gets its serving certificate from identity exactly as a proxy does: with a projected
ServiceAccount token for the identity audience, verifying identity (and its own
clients) against the trust roots that identity publishes in this namespace. The
ConfigMap is optional so the pod starts before identity has published it; the
process retries until the file appears. mesh-controller's defaults match these
paths (MESH_IDENTITY_TOKEN_FILE, MESH_IDENTITY_TRUST_ANCHORS_FILE override them).
*/}}
{{- define "mesh.destination.volumeMounts" -}}
- name: mesh-identity-token
  mountPath: /var/run/secrets/tokens
  readOnly: true
- name: mesh-identity-trust-roots
  mountPath: /var/run/mesh/identity/trust-roots
  readOnly: true
{{- end -}}

{{- define "mesh.destination.volumes" -}}
- name: mesh-identity-token
  projected:
    sources:
      - serviceAccountToken:
          audience: {{ .Values.identity.tokenAudience | quote }}
          expirationSeconds: 86400
          path: mesh-identity-token
- name: mesh-identity-trust-roots
  configMap:
    name: mesh-identity-trust-roots
    optional: true
{{- end -}}
