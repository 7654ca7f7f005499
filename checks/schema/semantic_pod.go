package schema

import (
	"fmt"
	"reflect"

	corev1 "k8s.io/api/core/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// restartPolicies are the restart policies a template of each kind of workload takes.
var (
	alwaysRestart = []corev1.RestartPolicy{corev1.RestartPolicyAlways}
	jobRestart    = []corev1.RestartPolicy{corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}
	podRestart    = []corev1.RestartPolicy{corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever}
)

// validateTemplate checks a pod template's labels, annotations and spec. extraVolumes
// are volumes the controller adds (a StatefulSet's volumeClaimTemplates), which
// containers may mount.
func validateTemplate(t *corev1.PodTemplateSpec, p *field.Path, restart []corev1.RestartPolicy, o options, extraVolumes ...string) field.ErrorList {
	errs := metav1validation.ValidateLabels(t.Labels, p.Child("metadata", "labels"))
	errs = append(errs, apimachineryvalidation.ValidateAnnotations(t.Annotations, p.Child("metadata", "annotations"))...)
	return append(errs, validatePodSpec(&t.Spec, p.Child("spec"), restart, o, extraVolumes...)...)
}

func validatePod(p *corev1.Pod, o options) field.ErrorList {
	return validatePodSpec(&p.Spec, field.NewPath("spec"), podRestart, o)
}

// validatePodSpec checks volumes, containers, their ports, mounts, environment and
// resources, and the pod's policies.
func validatePodSpec(s *corev1.PodSpec, p *field.Path, restart []corev1.RestartPolicy, o options, extraVolumes ...string) field.ErrorList {
	errs, volumes := validateVolumes(s.Volumes, p.Child("volumes"))
	for _, v := range extraVolumes {
		volumes[v] = true
	}
	if len(s.Containers) == 0 {
		errs = append(errs, field.Required(p.Child("containers"), ""))
	}
	names := map[string]bool{}
	errs = append(errs, validateContainers(s.InitContainers, p.Child("initContainers"), volumes, names, o)...)
	errs = append(errs, validateContainers(s.Containers, p.Child("containers"), volumes, names, o)...)
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

func validateContainers(cs []corev1.Container, p *field.Path, volumes, names map[string]bool, o options) field.ErrorList {
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
		errs = append(errs, validateEnv(c.Env, ip.Child("env"), o)...)
		errs = append(errs, validateEnvFrom(c.EnvFrom, ip.Child("envFrom"), o)...)
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
