package schema

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
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
// group/kind. A kind not listed gets no semantic checks (only the schema's).
func semanticRules(minor int) map[gvkKey]kindRules {
	noSpec := func([]byte) (field.ErrorList, error) { return nil, nil }
	ns := func(name apimachineryvalidation.ValidateNameFunc, spec func([]byte) (field.ErrorList, error)) kindRules {
		return kindRules{name: name, namespaced: true, spec: spec}
	}
	cluster := func(name apimachineryvalidation.ValidateNameFunc) kindRules {
		return kindRules{name: name, spec: noSpec}
	}
	return map[gvkKey]kindRules{
		{"", "v1", "Namespace"}:      cluster(label),
		{"", "v1", "Service"}:        ns(serviceName(minor), decodeAnd(validateService)),
		{"", "v1", "Pod"}:            ns(subdomain, decodeAnd(validatePod)),
		{"", "v1", "ConfigMap"}:      ns(subdomain, decodeAnd(validateConfigMap)),
		{"", "v1", "Secret"}:         ns(subdomain, decodeAnd(validateSecret)),
		{"", "v1", "ServiceAccount"}: ns(subdomain, noSpec),
		{"apps", "v1", "Deployment"}: ns(subdomain, decodeAnd(func(d *appsv1.Deployment) field.ErrorList {
			return validateWorkload(d.Spec.Replicas, d.Spec.Selector, &d.Spec.Template, alwaysRestart)
		})),
		{"apps", "v1", "ReplicaSet"}: ns(subdomain, decodeAnd(func(d *appsv1.ReplicaSet) field.ErrorList {
			return validateWorkload(d.Spec.Replicas, d.Spec.Selector, &d.Spec.Template, alwaysRestart)
		})),
		{"apps", "v1", "StatefulSet"}: ns(subdomain, decodeAnd(func(d *appsv1.StatefulSet) field.ErrorList {
			return validateWorkload(d.Spec.Replicas, d.Spec.Selector, &d.Spec.Template, alwaysRestart)
		})),
		{"apps", "v1", "DaemonSet"}: ns(subdomain, decodeAnd(func(d *appsv1.DaemonSet) field.ErrorList {
			return validateWorkload(nil, d.Spec.Selector, &d.Spec.Template, alwaysRestart)
		})),
		{"batch", "v1", "Job"}: ns(subdomain, decodeAnd(func(j *batchv1.Job) field.ErrorList {
			return validateTemplate(&j.Spec.Template, field.NewPath("spec", "template"), jobRestart)
		})),
		{"batch", "v1", "CronJob"}: ns(cronJobName, decodeAnd(func(j *batchv1.CronJob) field.ErrorList {
			return validateTemplate(&j.Spec.JobTemplate.Spec.Template, field.NewPath("spec", "jobTemplate", "spec", "template"), jobRestart)
		})),
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

// serviceName is the rule for Service names: a DNS-1035 label (starting with a
// letter) up to 1.34; a DNS-1123 label from 1.35 on, where RelaxedServiceNameValidation
// is on by default (1.36's API server accepts "1st-service").
func serviceName(minor int) apimachineryvalidation.ValidateNameFunc {
	if minor >= 35 {
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

// restartPolicies are the restart policies a template of each kind of workload takes.
var (
	alwaysRestart = []corev1.RestartPolicy{corev1.RestartPolicyAlways}
	jobRestart    = []corev1.RestartPolicy{corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}
	podRestart    = []corev1.RestartPolicy{corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}
)

// validateWorkload: the selector of an apps/v1 workload is set, valid, not empty and
// matches the template's labels, and the template is valid.
func validateWorkload(replicas *int32, sel *metav1.LabelSelector, t *corev1.PodTemplateSpec, restart []corev1.RestartPolicy) field.ErrorList {
	spec := field.NewPath("spec")
	var errs field.ErrorList
	if replicas != nil {
		errs = append(errs, apimachineryvalidation.ValidateNonnegativeField(int64(*replicas), spec.Child("replicas"))...)
	}
	if sel == nil {
		errs = append(errs, field.Required(spec.Child("selector"), ""))
	} else {
		errs = append(errs, metav1validation.ValidateLabelSelector(sel, metav1validation.LabelSelectorValidationOptions{}, spec.Child("selector"))...)
		if len(sel.MatchLabels)+len(sel.MatchExpressions) == 0 {
			errs = append(errs, field.Invalid(spec.Child("selector"), sel, "empty selector is invalid for deployment"))
		}
	}
	if s, err := metav1.LabelSelectorAsSelector(sel); sel != nil && err == nil && !s.Empty() && !s.Matches(labels.Set(t.Labels)) {
		errs = append(errs, field.Invalid(spec.Child("template", "metadata", "labels"), t.Labels, "`selector` does not match template `labels`"))
	}
	return append(errs, validateTemplate(t, spec.Child("template"), restart)...)
}

// validateTemplate checks a pod template's labels, annotations and spec.
func validateTemplate(t *corev1.PodTemplateSpec, p *field.Path, restart []corev1.RestartPolicy) field.ErrorList {
	errs := metav1validation.ValidateLabels(t.Labels, p.Child("metadata", "labels"))
	errs = append(errs, apimachineryvalidation.ValidateAnnotations(t.Annotations, p.Child("metadata", "annotations"))...)
	return append(errs, validatePodSpec(&t.Spec, p.Child("spec"), restart)...)
}

func validatePod(p *corev1.Pod) field.ErrorList {
	return validatePodSpec(&p.Spec, field.NewPath("spec"), podRestart)
}

// validatePodSpec checks volumes, containers, their ports, mounts and resources, and
// the pod's policies.
func validatePodSpec(s *corev1.PodSpec, p *field.Path, restart []corev1.RestartPolicy) field.ErrorList {
	errs, volumes := validateVolumes(s.Volumes, p.Child("volumes"))
	if len(s.Containers) == 0 {
		errs = append(errs, field.Required(p.Child("containers"), ""))
	}
	names := map[string]bool{}
	errs = append(errs, validateContainers(s.InitContainers, p.Child("initContainers"), volumes, names)...)
	errs = append(errs, validateContainers(s.Containers, p.Child("containers"), volumes, names)...)
	rp := s.RestartPolicy
	if rp == "" && contains(restart, corev1.RestartPolicyAlways) {
		rp = corev1.RestartPolicyAlways // the default, where it is allowed
	}
	if !contains(restart, rp) {
		if rp == "" {
			errs = append(errs, field.Required(p.Child("restartPolicy"), fmt.Sprintf("valid values: %s", quoted(restart))))
		} else {
			errs = append(errs, field.NotSupported(p.Child("restartPolicy"), rp, restart))
		}
	}
	if s.DNSPolicy != "" {
		errs = append(errs, enum(p.Child("dnsPolicy"), s.DNSPolicy, corev1.DNSClusterFirstWithHostNet, corev1.DNSClusterFirst, corev1.DNSDefault, corev1.DNSNone)...)
	}
	return errs
}

// validateVolumes: names are DNS-1123 labels and unique, and each volume has at most
// one source (none is an emptyDir by default).
func validateVolumes(vols []corev1.Volume, p *field.Path) (field.ErrorList, map[string]bool) {
	var errs field.ErrorList
	names := map[string]bool{}
	for i, v := range vols {
		ip := p.Index(i)
		switch {
		case v.Name == "":
			errs = append(errs, field.Required(ip.Child("name"), ""))
		case names[v.Name]:
			errs = append(errs, field.Duplicate(ip.Child("name"), v.Name))
		default:
			errs = append(errs, dns1123Label(ip.Child("name"), v.Name)...)
		}
		names[v.Name] = true
		if n := setPointers(v.VolumeSource); n > 1 {
			errs = append(errs, field.Forbidden(ip, "may not specify more than 1 volume type"))
		}
	}
	return errs, names
}

// setPointers counts the non-nil pointer fields of a struct.
func setPointers(s any) int {
	v := reflect.ValueOf(s)
	n := 0
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			n++
		}
	}
	return n
}

func validateContainers(cs []corev1.Container, p *field.Path, volumes, names map[string]bool) field.ErrorList {
	var errs field.ErrorList
	for i := range cs {
		c := &cs[i]
		ip := p.Index(i)
		switch {
		case c.Name == "":
			errs = append(errs, field.Required(ip.Child("name"), ""))
		case names[c.Name]:
			errs = append(errs, field.Duplicate(ip.Child("name"), c.Name))
		default:
			errs = append(errs, dns1123Label(ip.Child("name"), c.Name)...)
		}
		names[c.Name] = true
		if c.Image == "" {
			errs = append(errs, field.Required(ip.Child("image"), ""))
		}
		if c.ImagePullPolicy != "" {
			errs = append(errs, enum(ip.Child("imagePullPolicy"), c.ImagePullPolicy, corev1.PullAlways, corev1.PullNever, corev1.PullIfNotPresent)...)
		}
		errs = append(errs, validateContainerPorts(c.Ports, ip.Child("ports"))...)
		mounts := map[string]bool{}
		for j, m := range c.VolumeMounts {
			mp := ip.Child("volumeMounts").Index(j)
			if m.Name == "" {
				errs = append(errs, field.Required(mp.Child("name"), ""))
			} else if !volumes[m.Name] {
				errs = append(errs, field.NotFound(mp.Child("name"), m.Name))
			}
			if m.MountPath == "" {
				errs = append(errs, field.Required(mp.Child("mountPath"), ""))
			} else if mounts[m.MountPath] {
				errs = append(errs, field.Invalid(mp.Child("mountPath"), m.MountPath, "must be unique"))
			}
			mounts[m.MountPath] = true
		}
		errs = append(errs, validateRequestsWithinLimits(c.Resources, ip.Child("resources"))...)
	}
	return errs
}

func validateContainerPorts(ports []corev1.ContainerPort, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := map[string]bool{}
	for i, port := range ports {
		ip := p.Index(i)
		if port.Name != "" {
			for _, msg := range validation.IsValidPortName(port.Name) {
				errs = append(errs, field.Invalid(ip.Child("name"), port.Name, msg))
			}
			if names[port.Name] {
				errs = append(errs, field.Duplicate(ip.Child("name"), port.Name))
			}
			names[port.Name] = true
		}
		if port.ContainerPort == 0 {
			errs = append(errs, field.Required(ip.Child("containerPort"), ""))
		} else {
			errs = append(errs, portNum(ip.Child("containerPort"), int(port.ContainerPort))...)
		}
		if port.HostPort != 0 {
			errs = append(errs, portNum(ip.Child("hostPort"), int(port.HostPort))...)
		}
		if port.Protocol != "" {
			errs = append(errs, enum(ip.Child("protocol"), port.Protocol, corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP)...)
		}
	}
	return errs
}

// validateRequestsWithinLimits: a request is at most the limit of the same resource.
func validateRequestsWithinLimits(r corev1.ResourceRequirements, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, name := range sortedKeys(r.Requests) {
		req := r.Requests[name]
		if lim, ok := r.Limits[name]; ok && req.Cmp(lim) > 0 {
			errs = append(errs, field.Invalid(p.Child("requests").Key(string(name)), req.String(), fmt.Sprintf("must be less than or equal to %s limit of %s", name, lim.String())))
		}
	}
	return errs
}

func validateService(s *corev1.Service) field.ErrorList {
	spec := field.NewPath("spec")
	var errs field.ErrorList
	if s.Spec.Type != "" {
		errs = append(errs, enum(spec.Child("type"), s.Spec.Type, corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeExternalName)...)
	}
	headless := s.Spec.ClusterIP == corev1.ClusterIPNone
	if len(s.Spec.Ports) == 0 && !headless && s.Spec.Type != corev1.ServiceTypeExternalName {
		errs = append(errs, field.Required(spec.Child("ports"), ""))
	}
	names := map[string]bool{}
	type portKey struct {
		port  int32
		proto corev1.Protocol
	}
	seen := map[portKey]bool{}
	for i, sp := range s.Spec.Ports {
		ip := spec.Child("ports").Index(i)
		switch {
		case sp.Name == "" && len(s.Spec.Ports) > 1:
			errs = append(errs, field.Required(ip.Child("name"), ""))
		case sp.Name != "":
			errs = append(errs, dns1123Label(ip.Child("name"), sp.Name)...)
			if names[sp.Name] {
				errs = append(errs, field.Duplicate(ip.Child("name"), sp.Name))
			}
			names[sp.Name] = true
		}
		errs = append(errs, portNum(ip.Child("port"), int(sp.Port))...)
		proto := sp.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		} else {
			errs = append(errs, enum(ip.Child("protocol"), sp.Protocol, corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP)...)
		}
		if k := (portKey{sp.Port, proto}); seen[k] {
			errs = append(errs, field.Duplicate(ip, fmt.Sprintf("%d/%s", sp.Port, proto)))
		} else {
			seen[k] = true
		}
		switch {
		case sp.TargetPort.StrVal != "":
			for _, msg := range validation.IsValidPortName(sp.TargetPort.StrVal) {
				errs = append(errs, field.Invalid(ip.Child("targetPort"), sp.TargetPort.StrVal, msg))
			}
		case sp.TargetPort.IntVal != 0:
			errs = append(errs, portNum(ip.Child("targetPort"), int(sp.TargetPort.IntVal))...)
		}
	}
	return append(errs, metav1validation.ValidateLabels(s.Spec.Selector, spec.Child("selector"))...)
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
