package schema

import (
	"encoding/json"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// kindRules are the API server's type-specific rules for one built-in kind: the rule
// for its name, whether it is namespaced, and a validation of the rest of the object
// (decoded into its k8s.io/api type).
type kindRules struct {
	name       apimachineryvalidation.ValidateNameFunc
	namespaced bool
	spec       func(raw []byte) (field.ErrorList, error)
}

var (
	subdomain = apimachineryvalidation.NameIsDNSSubdomain
	label     = apimachineryvalidation.NameIsDNSLabel
)

// semanticRules returns the rules of the built-in kinds mesh checks semantically, by
// group/kind, as the API server of Kubernetes 1.minor has them. A kind not listed gets
// no semantic checks (only the schema's).
func semanticRules(minor int) map[gvkKey]kindRules {
	noSpec := func([]byte) (field.ErrorList, error) { return nil, nil }
	ns := func(name apimachineryvalidation.ValidateNameFunc, spec func([]byte) (field.ErrorList, error)) kindRules {
		return kindRules{name: name, namespaced: true, spec: spec}
	}
	cluster := func(name apimachineryvalidation.ValidateNameFunc) kindRules {
		return kindRules{name: name, spec: noSpec}
	}
	o := optionsFor(minor)
	return map[gvkKey]kindRules{
		{"", "v1", "Namespace"}:      cluster(label),
		{"", "v1", "Service"}:        ns(serviceName(minor), decodeAnd(validateService)),
		{"", "v1", "Pod"}:            ns(subdomain, decodeAnd(func(p *corev1.Pod) field.ErrorList { return validatePod(p, o) })),
		{"", "v1", "ConfigMap"}:      ns(subdomain, decodeAnd(validateConfigMap)),
		{"", "v1", "Secret"}:         ns(subdomain, decodeAnd(validateSecret)),
		{"", "v1", "ServiceAccount"}: ns(subdomain, noSpec),
		{"apps", "v1", "Deployment"}: ns(subdomain, decodeAnd(func(d *appsv1.Deployment) field.ErrorList { return validateDeployment(d, o) })),
		{"apps", "v1", "ReplicaSet"}: ns(subdomain, decodeAnd(func(d *appsv1.ReplicaSet) field.ErrorList {
			return validateWorkload(d.Spec.Replicas, d.Spec.Selector, &d.Spec.Template, o)
		})),
		{"apps", "v1", "StatefulSet"}:                                            ns(label, decodeAnd(func(s *appsv1.StatefulSet) field.ErrorList { return validateStatefulSet(s, o) })),
		{"apps", "v1", "DaemonSet"}:                                              ns(subdomain, decodeAnd(func(d *appsv1.DaemonSet) field.ErrorList { return validateDaemonSet(d, o) })),
		{"batch", "v1", "Job"}:                                                   ns(subdomain, decodeAnd(func(j *batchv1.Job) field.ErrorList { return validateJob(j, o) })),
		{"batch", "v1", "CronJob"}:                                               ns(cronJobName, decodeAnd(func(j *batchv1.CronJob) field.ErrorList { return validateCronJob(j, o) })),
		{"rbac.authorization.k8s.io", "v1", "Role"}:                              ns(rbacName, noSpec),
		{"rbac.authorization.k8s.io", "v1", "RoleBinding"}:                       ns(rbacName, noSpec),
		{"rbac.authorization.k8s.io", "v1", "ClusterRole"}:                       cluster(rbacName),
		{"rbac.authorization.k8s.io", "v1", "ClusterRoleBinding"}:                cluster(rbacName),
		{"policy", "v1", "PodDisruptionBudget"}:                                  ns(subdomain, noSpec),
		{"networking.k8s.io", "v1", "NetworkPolicy"}:                             ns(subdomain, noSpec),
		{"networking.k8s.io", "v1", "Ingress"}:                                   ns(subdomain, noSpec),
		{"coordination.k8s.io", "v1", "Lease"}:                                   ns(subdomain, noSpec),
		{"autoscaling", "v2", "HorizontalPodAutoscaler"}:                         ns(subdomain, noSpec),
		{"admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration"}:   cluster(subdomain),
		{"admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration"}: cluster(subdomain),
	}
}

// options are the rules that differ between Kubernetes minors (feature gates that
// change their default), for the parts of an object shared by several kinds.
type options struct {
	// relaxedEnv: environment variable names (and envFrom prefixes) may be any
	// printable ASCII but '=' (RelaxedEnvironmentVariableValidation: on by default
	// from 1.32, GA and locked in 1.34); before, C identifiers only.
	relaxedEnv bool
	// stsServiceName: a StatefulSet's serviceName, when set, is a DNS-1123 label
	// (kubernetes/kubernetes#130233, from 1.33); before, it was not checked.
	stsServiceName bool
}

func optionsFor(minor int) options {
	return options{relaxedEnv: minor >= 32, stsServiceName: minor >= 33}
}

// serviceName is the rule for Service names: a DNS-1035 label (starting with a
// letter) up to 1.35; a DNS-1123 label (may start with a digit) from 1.36 on, where
// RelaxedServiceNameValidation is on by default (alpha, off, in 1.34 and 1.35; beta,
// on, from 1.36: pkg/features/kube_features.go of k8s.io/kubernetes v1.36.3).
func serviceName(minor int) apimachineryvalidation.ValidateNameFunc {
	if minor >= 36 {
		return label
	}
	return apimachineryvalidation.NameIsDNS1035Label
}

// rbacName: RBAC objects' names only need to be a path segment (no "/", "%", "." or
// "..").
func rbacName(name string, prefix bool) []string {
	if prefix {
		return content.IsPathSegmentPrefix(name)
	}
	return content.IsPathSegmentName(name)
}

// cronJobName: a DNS subdomain of at most 52 characters, leaving room for the suffix of
// the Jobs the CronJob creates.
func cronJobName(name string, prefix bool) []string {
	msgs := subdomain(name, prefix)
	if len(name) > 52 {
		msgs = append(msgs, "must be no more than 52 characters")
	}
	return msgs
}

// decodeAnd decodes the object into T (loosely: the schema has judged the fields
// already) and runs f on it.
func decodeAnd[T any](f func(*T) field.ErrorList) func([]byte) (field.ErrorList, error) {
	return func(raw []byte) (field.ErrorList, error) {
		v := new(T)
		if err := json.Unmarshal(raw, v); err != nil {
			return nil, err
		}
		return f(v), nil
	}
}

// Semantic checks a built-in object, for v's Kubernetes version, with the API server's type-specific rules that
// the OpenAPI schemas do not carry: names (DNS-1123 labels and subdomains, per kind),
// the namespace, labels, annotations and selectors, a workload's selector matching its
// template's labels, containers with a name and an image, unique container, volume
// and port names, volume mounts that refer to volumes, port ranges, requests within
// limits, and the enumerations of restart, DNS and pull policies, protocols and Service
// types. Kinds without such rules, and objects the schema already rejects as
// undecodable, get none. A missing namespace is the one kubectl would use.
func (v *Validator) Semantic(obj map[string]any) []FieldError {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	group, version := splitAPIVersion(apiVersion)
	minor := 0
	if _, m, ok := strings.Cut(v.version, "."); ok {
		minor, _ = strconv.Atoi(m)
	}
	rules, ok := semanticRules(minor)[gvkKey{group, version, kind}]
	if !ok {
		return nil
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil
	}
	var head struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	if json.Unmarshal(raw, &head) != nil {
		return nil // the schema reports what is wrong with metadata
	}
	meta := head.Metadata
	// The API server takes the namespace from the request: kubectl's default when the
	// object has none, and none at all for cluster-scoped kinds.
	if !rules.namespaced {
		meta.Namespace = ""
	} else if meta.Namespace == "" {
		meta.Namespace = metav1.NamespaceDefault
	}
	errs := apimachineryvalidation.ValidateObjectMetaAccessor(&meta, rules.namespaced, rules.name, field.NewPath("metadata"))
	if more, err := rules.spec(raw); err == nil {
		errs = append(errs, more...)
	}
	out := make([]FieldError, 0, len(errs))
	for _, e := range errs {
		out = append(out, FieldError{Path: e.Field, Message: e.ErrorBody()})
	}
	return out
}

func validateConfigMap(c *corev1.ConfigMap) field.ErrorList {
	var errs field.ErrorList
	for _, k := range sortedKeys(c.Data) {
		errs = append(errs, configKey(field.NewPath("data").Key(k), k)...)
	}
	for _, k := range sortedKeys(c.BinaryData) {
		errs = append(errs, configKey(field.NewPath("binaryData").Key(k), k)...)
		if _, dup := c.Data[k]; dup {
			errs = append(errs, field.Invalid(field.NewPath("binaryData").Key(k), k, "duplicate of key present in data"))
		}
	}
	return errs
}

func validateSecret(s *corev1.Secret) field.ErrorList {
	var errs field.ErrorList
	for _, k := range sortedKeys(s.Data) {
		errs = append(errs, configKey(field.NewPath("data").Key(k), k)...)
	}
	for _, k := range sortedKeys(s.StringData) {
		errs = append(errs, configKey(field.NewPath("stringData").Key(k), k)...)
	}
	return errs
}
