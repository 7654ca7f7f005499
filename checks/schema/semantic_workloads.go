package schema

import (
	"fmt"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var spec = field.NewPath("spec")

// validateWorkload: the selector of an apps/v1 workload is set, valid, not empty and
// matches the template's labels, and the template is valid. extraVolumes are the
// names the template's containers may mount besides its volumes.
func validateWorkload(replicas *int32, sel *metav1.LabelSelector, t *corev1.PodTemplateSpec, o options, extraVolumes ...string) field.ErrorList {
	var errs field.ErrorList
	if replicas != nil {
		errs = append(errs, nonNegative(spec.Child("replicas"), int64(*replicas))...)
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
	return append(errs, validateTemplate(t, spec.Child("template"), alwaysRestart, o, extraVolumes...)...)
}

func nonNegative(p *field.Path, v int64) field.ErrorList {
	return apimachineryvalidation.ValidateNonnegativeField(v, p)
}

// defaultProgressDeadline is what the API server sets progressDeadlineSeconds to.
const defaultProgressDeadline = 600

// validateDeployment: the workload, its strategy (Recreate without rollingUpdate;
// maxSurge and maxUnavailable valid, at most 100% unavailable, not both 0) and the
// progress deadline beyond minReadySeconds.
func validateDeployment(d *appsv1.Deployment, o options) field.ErrorList {
	errs := validateWorkload(d.Spec.Replicas, d.Spec.Selector, &d.Spec.Template, o)
	sp := spec.Child("strategy")
	switch st := d.Spec.Strategy; st.Type {
	case appsv1.RecreateDeploymentStrategyType:
		if st.RollingUpdate != nil {
			errs = append(errs, field.Forbidden(sp.Child("rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'"))
		}
	case "", appsv1.RollingUpdateDeploymentStrategyType:
		ru := appsv1.RollingUpdateDeployment{}
		if st.RollingUpdate != nil {
			ru = *st.RollingUpdate
		}
		unavailable, surge := orDefault(ru.MaxUnavailable, intstr.FromString("25%")), orDefault(ru.MaxSurge, intstr.FromString("25%"))
		rp := sp.Child("rollingUpdate")
		errs = append(errs, intOrPercent(rp.Child("maxUnavailable"), unavailable)...)
		errs = append(errs, intOrPercent(rp.Child("maxSurge"), surge)...)
		if intOrPercentValue(unavailable) == 0 && intOrPercentValue(surge) == 0 {
			errs = append(errs, field.Invalid(rp.Child("maxUnavailable"), unavailable.String(), "may not be 0 when `maxSurge` is 0"))
		}
		errs = append(errs, notOver100Percent(rp.Child("maxUnavailable"), unavailable)...)
	default:
		errs = append(errs, field.NotSupported(sp.Child("type"), st.Type, []appsv1.DeploymentStrategyType{appsv1.RecreateDeploymentStrategyType, appsv1.RollingUpdateDeploymentStrategyType}))
	}
	errs = append(errs, nonNegative(spec.Child("minReadySeconds"), int64(d.Spec.MinReadySeconds))...)
	if r := d.Spec.RevisionHistoryLimit; r != nil {
		errs = append(errs, nonNegative(spec.Child("revisionHistoryLimit"), int64(*r))...)
	}
	pds := int32(defaultProgressDeadline)
	if d.Spec.ProgressDeadlineSeconds != nil {
		pds = *d.Spec.ProgressDeadlineSeconds
		errs = append(errs, nonNegative(spec.Child("progressDeadlineSeconds"), int64(pds))...)
	}
	if pds <= d.Spec.MinReadySeconds {
		errs = append(errs, field.Invalid(spec.Child("progressDeadlineSeconds"), pds, "must be greater than minReadySeconds"))
	}
	return errs
}

// validateDaemonSet: the workload and its update strategy (RollingUpdate: maxSurge
// and maxUnavailable valid, at most 100%, exactly one of them non-zero, with the API
// server's defaults of 0 and 1).
func validateDaemonSet(d *appsv1.DaemonSet, o options) field.ErrorList {
	errs := validateWorkload(nil, d.Spec.Selector, &d.Spec.Template, o)
	sp := spec.Child("updateStrategy")
	switch st := d.Spec.UpdateStrategy; st.Type {
	case appsv1.OnDeleteDaemonSetStrategyType:
	case "", appsv1.RollingUpdateDaemonSetStrategyType:
		ru := appsv1.RollingUpdateDaemonSet{}
		if st.RollingUpdate != nil {
			ru = *st.RollingUpdate
		}
		unavailable, surge := orDefault(ru.MaxUnavailable, intstr.FromInt32(1)), orDefault(ru.MaxSurge, intstr.FromInt32(0))
		rp := sp.Child("rollingUpdate")
		errs = append(errs, intOrPercent(rp.Child("maxUnavailable"), unavailable)...)
		errs = append(errs, intOrPercent(rp.Child("maxSurge"), surge)...)
		errs = append(errs, notOver100Percent(rp.Child("maxUnavailable"), unavailable)...)
		errs = append(errs, notOver100Percent(rp.Child("maxSurge"), surge)...)
		hasUnavailable, hasSurge := intOrPercentValue(unavailable) != 0, intOrPercentValue(surge) != 0
		switch {
		case hasUnavailable && hasSurge:
			errs = append(errs, field.Invalid(rp.Child("maxSurge"), surge.String(), "may not be set when maxUnavailable is non-zero"))
		case !hasUnavailable && !hasSurge:
			errs = append(errs, field.Required(rp.Child("maxUnavailable"), "cannot be 0 when maxSurge is 0"))
		}
	default:
		errs = append(errs, field.NotSupported(sp.Child("type"), st.Type, []appsv1.DaemonSetUpdateStrategyType{appsv1.RollingUpdateDaemonSetStrategyType, appsv1.OnDeleteDaemonSetStrategyType}))
	}
	errs = append(errs, nonNegative(spec.Child("minReadySeconds"), int64(d.Spec.MinReadySeconds))...)
	if r := d.Spec.RevisionHistoryLimit; r != nil {
		errs = append(errs, nonNegative(spec.Child("revisionHistoryLimit"), int64(*r))...)
	}
	return errs
}

// validateStatefulSet: the workload (whose containers may mount the
// volumeClaimTemplates by name), podManagementPolicy, the update strategy
// (rollingUpdate only for RollingUpdate, a partition >= 0), the claim templates
// (DNS-1123 label names, an access mode and a storage request), the claim
// retention policy and serviceName.
func validateStatefulSet(s *appsv1.StatefulSet, o options) field.ErrorList {
	var claims []string
	var errs field.ErrorList
	for i, c := range s.Spec.VolumeClaimTemplates {
		claims = append(claims, c.Name)
		errs = append(errs, validateClaimTemplate(&c, spec.Child("volumeClaimTemplates").Index(i))...)
	}
	errs = append(errs, validateWorkload(s.Spec.Replicas, s.Spec.Selector, &s.Spec.Template, o, claims...)...)
	if p := s.Spec.PodManagementPolicy; p != "" && p != appsv1.OrderedReadyPodManagement && p != appsv1.ParallelPodManagement {
		errs = append(errs, field.Invalid(spec.Child("podManagementPolicy"), p, "must be 'OrderedReady' or 'Parallel'"))
	}
	sp := spec.Child("updateStrategy")
	switch st := s.Spec.UpdateStrategy; st.Type {
	case appsv1.OnDeleteStatefulSetStrategyType:
		if st.RollingUpdate != nil {
			errs = append(errs, field.Invalid(sp.Child("rollingUpdate"), "", "only allowed for updateStrategy 'RollingUpdate'"))
		}
	case "", appsv1.RollingUpdateStatefulSetStrategyType:
		if ru := st.RollingUpdate; ru != nil && ru.Partition != nil {
			errs = append(errs, nonNegative(sp.Child("rollingUpdate", "partition"), int64(*ru.Partition))...)
		}
	default:
		errs = append(errs, field.Invalid(sp.Child("type"), st.Type, "must be 'RollingUpdate' or 'OnDelete'"))
	}
	if r := s.Spec.PersistentVolumeClaimRetentionPolicy; r != nil {
		rp := spec.Child("persistentVolumeClaimRetentionPolicy")
		for i, v := range []appsv1.PersistentVolumeClaimRetentionPolicyType{r.WhenDeleted, r.WhenScaled} {
			if v != "" {
				errs = append(errs, enum(rp.Child([]string{"whenDeleted", "whenScaled"}[i]), v, appsv1.RetainPersistentVolumeClaimRetentionPolicyType, appsv1.DeletePersistentVolumeClaimRetentionPolicyType)...)
			}
		}
	}
	errs = append(errs, nonNegative(spec.Child("minReadySeconds"), int64(s.Spec.MinReadySeconds))...)
	if s.Spec.Ordinals != nil {
		errs = append(errs, nonNegative(spec.Child("ordinals", "start"), int64(s.Spec.Ordinals.Start))...)
	}
	if o.stsServiceName && s.Spec.ServiceName != "" {
		errs = append(errs, dns1123Label(spec.Child("serviceName"), s.Spec.ServiceName)...)
	}
	return errs
}

var accessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadOnlyMany, corev1.ReadWriteMany, corev1.ReadWriteOnce, corev1.ReadWriteOncePod}

// validateClaimTemplate: the name becomes a volume's (a DNS-1123 label); the spec
// has an access mode and a positive storage request.
func validateClaimTemplate(c *corev1.PersistentVolumeClaim, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if c.Name == "" {
		errs = append(errs, field.Required(p.Child("metadata", "name"), ""))
	} else {
		errs = append(errs, dns1123Label(p.Child("metadata", "name"), c.Name)...)
	}
	sp := p.Child("spec")
	if len(c.Spec.AccessModes) == 0 {
		errs = append(errs, field.Required(sp.Child("accessModes"), "at least 1 access mode is required"))
	}
	for _, m := range c.Spec.AccessModes {
		errs = append(errs, enum(sp.Child("accessModes"), m, accessModes...)...)
	}
	if q, ok := c.Spec.Resources.Requests[corev1.ResourceStorage]; !ok {
		errs = append(errs, field.Required(sp.Child("resources").Key(string(corev1.ResourceStorage)), ""))
	} else if q.Sign() <= 0 {
		errs = append(errs, field.Invalid(sp.Child("resources").Key(string(corev1.ResourceStorage)), q.String(), "must be greater than zero"))
	}
	return errs
}

func orDefault(v *intstr.IntOrString, def intstr.IntOrString) intstr.IntOrString {
	if v == nil {
		return def
	}
	return *v
}

// intOrPercent: a non-negative integer or a percentage ("25%").
func intOrPercent(p *field.Path, v intstr.IntOrString) field.ErrorList {
	if v.Type == intstr.String {
		var errs field.ErrorList
		for _, msg := range validation.IsValidPercent(v.StrVal) {
			errs = append(errs, field.Invalid(p, v.StrVal, msg))
		}
		return errs
	}
	return nonNegative(p, int64(v.IntVal))
}

func intOrPercentValue(v intstr.IntOrString) int {
	if v.Type == intstr.String {
		n, _ := strconv.Atoi(strings.TrimSuffix(v.StrVal, "%"))
		return n
	}
	return int(v.IntVal)
}

func notOver100Percent(p *field.Path, v intstr.IntOrString) field.ErrorList {
	if v.Type == intstr.String && len(validation.IsValidPercent(v.StrVal)) == 0 && intOrPercentValue(v) > 100 {
		return field.ErrorList{field.Invalid(p, v.StrVal, fmt.Sprintf("must not be greater than %s", "100%"))}
	}
	return nil
}
