package schema

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// envVarName: a variable's name (or an envFrom prefix) as the minor's API server
// takes it: printable ASCII but '=' when relaxed, a C identifier before.
func envVarName(p *field.Path, name string, o options) field.ErrorList {
	check := validation.IsEnvVarName
	if o.relaxedEnv {
		check = validation.IsRelaxedEnvVarName
	}
	var errs field.ErrorList
	for _, msg := range check(name) {
		errs = append(errs, field.Invalid(p, name, msg))
	}
	return errs
}

// validateEnv: every variable has a valid name (duplicates are allowed: the last
// wins), and a valueFrom has exactly one source and no value beside it.
func validateEnv(env []corev1.EnvVar, p *field.Path, o options) field.ErrorList {
	var errs field.ErrorList
	for i, ev := range env {
		ip := p.Index(i)
		if ev.Name == "" {
			errs = append(errs, field.Required(ip.Child("name"), ""))
		} else {
			errs = append(errs, envVarName(ip.Child("name"), ev.Name, o)...)
		}
		if ev.ValueFrom != nil {
			errs = append(errs, validateEnvValueFrom(ev, ip.Child("valueFrom"))...)
		}
	}
	return errs
}

// envFieldPaths are the pod fields a fieldRef may name (besides
// metadata.labels['k'] and metadata.annotations['k']).
var envFieldPaths = []string{"metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs"}

// envResources are the resources a resourceFieldRef may name (besides hugepages-*).
var envResources = []string{"limits.cpu", "limits.memory", "limits.ephemeral-storage", "requests.cpu", "requests.memory", "requests.ephemeral-storage"}

func validateEnvValueFrom(ev corev1.EnvVar, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	vf := ev.ValueFrom
	if r := vf.FieldRef; r != nil {
		fp := p.Child("fieldRef")
		switch path, _, subscripted := strings.Cut(r.FieldPath, "['"); {
		case r.FieldPath == "":
			errs = append(errs, field.Required(fp.Child("fieldPath"), ""))
		case subscripted && (path == "metadata.labels" || path == "metadata.annotations"):
		case subscripted:
			errs = append(errs, field.Invalid(fp, path, "does not support subscript"))
		case !contains(envFieldPaths, r.FieldPath):
			errs = append(errs, field.NotSupported(fp.Child("fieldPath"), r.FieldPath, envFieldPaths))
		}
	}
	if r := vf.ResourceFieldRef; r != nil {
		rp := p.Child("resourceFieldRef")
		switch {
		case r.Resource == "":
			errs = append(errs, field.Required(rp.Child("resource"), ""))
		case !contains(envResources, r.Resource) && !strings.HasPrefix(r.Resource, "requests.hugepages-") && !strings.HasPrefix(r.Resource, "limits.hugepages-"):
			errs = append(errs, field.NotSupported(rp.Child("resource"), r.Resource, envResources))
		}
	}
	if r := vf.ConfigMapKeyRef; r != nil {
		errs = append(errs, keySelector(p.Child("configMapKeyRef"), r.Name, r.Key)...)
	}
	if r := vf.SecretKeyRef; r != nil {
		errs = append(errs, keySelector(p.Child("secretKeyRef"), r.Name, r.Key)...)
	}
	switch n := setPointers(*vf); {
	case n == 0:
		errs = append(errs, field.Invalid(p, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef`, `secretKeyRef` or `fileKeyRef`"))
	case ev.Value != "":
		errs = append(errs, field.Invalid(p, "", "may not be specified when `value` is not empty"))
	case n > 1:
		errs = append(errs, field.Invalid(p, "", "may not have more than one field specified at a time"))
	}
	return errs
}

// keySelector: a configMapKeyRef's or secretKeyRef's name is a DNS subdomain and its
// key a valid ConfigMap key.
func keySelector(p *field.Path, name, key string) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range subdomain(name, false) {
		errs = append(errs, field.Invalid(p.Child("name"), name, msg))
	}
	if key == "" {
		return append(errs, field.Required(p.Child("key"), ""))
	}
	return append(errs, configKey(p.Child("key"), key)...)
}

// validateEnvFrom: a prefix is a valid variable name, and each source names exactly
// one ConfigMap or Secret, by a valid name.
func validateEnvFrom(from []corev1.EnvFromSource, p *field.Path, o options) field.ErrorList {
	var errs field.ErrorList
	for i, ef := range from {
		ip := p.Index(i)
		if ef.Prefix != "" {
			errs = append(errs, envVarName(ip.Child("prefix"), ef.Prefix, o)...)
		}
		if r := ef.ConfigMapRef; r != nil {
			errs = append(errs, refName(ip.Child("configMapRef", "name"), r.Name)...)
		}
		if r := ef.SecretRef; r != nil {
			errs = append(errs, refName(ip.Child("secretRef", "name"), r.Name)...)
		}
		switch n := setPointers(ef); {
		case n == 0:
			errs = append(errs, field.Invalid(ip, "", "must specify one of: `configMapRef` or `secretRef`"))
		case n > 1:
			errs = append(errs, field.Invalid(ip, "", "may not have more than one field specified at a time"))
		}
	}
	return errs
}

func refName(p *field.Path, name string) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	var errs field.ErrorList
	for _, msg := range subdomain(name, true) {
		errs = append(errs, field.Invalid(p, name, msg))
	}
	return errs
}
