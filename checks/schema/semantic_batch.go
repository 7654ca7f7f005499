package schema

import (
	"fmt"
	"regexp"
	"strings"
	"time"
	_ "time/tzdata" // CronJob time zones resolve the same on every machine

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validateJob: the Job's spec, and a selector (if the Job brings its own) that
// matches the template's labels.
func validateJob(j *batchv1.Job, o options) field.ErrorList {
	errs := validateJobSpec(&j.Spec, spec, o)
	if sel := j.Spec.Selector; sel != nil {
		errs = append(errs, metav1validation.ValidateLabelSelector(sel, metav1validation.LabelSelectorValidationOptions{}, spec.Child("selector"))...)
		if s, err := metav1.LabelSelectorAsSelector(sel); err == nil && !s.Matches(labels.Set(j.Spec.Template.Labels)) {
			errs = append(errs, field.Invalid(spec.Child("template", "metadata", "labels"), j.Spec.Template.Labels, "`selector` does not match template `labels`"))
		}
	}
	return errs
}

// validateJobSpec: counts and durations are non-negative, the completion mode is
// known (Indexed needs completions), and the template restarts OnFailure or Never.
func validateJobSpec(s *batchv1.JobSpec, p *field.Path, o options) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, nonNegatives(p, "parallelism", s.Parallelism, "completions", s.Completions, "backoffLimit", s.BackoffLimit,
		"ttlSecondsAfterFinished", s.TTLSecondsAfterFinished, "backoffLimitPerIndex", s.BackoffLimitPerIndex, "maxFailedIndexes", s.MaxFailedIndexes)...)
	if v := s.ActiveDeadlineSeconds; v != nil {
		errs = append(errs, nonNegative(p.Child("activeDeadlineSeconds"), *v)...)
	}
	if m := s.CompletionMode; m != nil {
		errs = append(errs, enum(p.Child("completionMode"), *m, batchv1.NonIndexedCompletion, batchv1.IndexedCompletion)...)
		// Without completions and parallelism, the API server sets both to 1.
		if *m == batchv1.IndexedCompletion && s.Completions == nil && s.Parallelism != nil {
			errs = append(errs, field.Required(p.Child("completions"), "when completion mode is Indexed"))
		}
	}
	return append(errs, validateTemplate(&s.Template, p.Child("template"), jobRestart, o)...)
}

// validateCronJob: the schedule (robfig/cron's standard syntax, with descriptors
// such as @hourly and @every, and no TZ= or CRON_TZ= in it), the time zone (an IANA
// name, not Local), the concurrency policy, non-negative limits, and the job
// template (whose selector is generated, so it may not bring one).
func validateCronJob(j *batchv1.CronJob, o options) field.ErrorList {
	var errs field.ErrorList
	s := &j.Spec
	if s.Schedule == "" {
		errs = append(errs, field.Required(spec.Child("schedule"), ""))
	} else {
		errs = append(errs, validateSchedule(spec.Child("schedule"), s.Schedule)...)
	}
	if s.TimeZone != nil {
		errs = append(errs, validateTimeZone(spec.Child("timeZone"), *s.TimeZone)...)
	}
	if s.ConcurrencyPolicy != "" {
		errs = append(errs, enum(spec.Child("concurrencyPolicy"), s.ConcurrencyPolicy, batchv1.AllowConcurrent, batchv1.ForbidConcurrent, batchv1.ReplaceConcurrent)...)
	}
	if v := s.StartingDeadlineSeconds; v != nil {
		errs = append(errs, nonNegative(spec.Child("startingDeadlineSeconds"), *v)...)
	}
	errs = append(errs, nonNegatives(spec, "successfulJobsHistoryLimit", s.SuccessfulJobsHistoryLimit, "failedJobsHistoryLimit", s.FailedJobsHistoryLimit)...)
	jp := spec.Child("jobTemplate", "spec")
	errs = append(errs, validateJobSpec(&s.JobTemplate.Spec, jp, o)...)
	if s.JobTemplate.Spec.Selector != nil {
		errs = append(errs, field.Invalid(jp.Child("selector"), "", "`selector` will be auto-generated"))
	}
	if m := s.JobTemplate.Spec.ManualSelector; m != nil && *m {
		errs = append(errs, field.NotSupported(jp.Child("manualSelector"), *m, []string{"nil", "false"}))
	}
	return errs
}

// nonNegatives checks pairs of a child's name and its optional value, in order.
func nonNegatives(p *field.Path, pairs ...any) field.ErrorList {
	var errs field.ErrorList
	for i := 0; i+1 < len(pairs); i += 2 {
		if v, _ := pairs[i+1].(*int32); v != nil {
			errs = append(errs, nonNegative(p.Child(pairs[i].(string)), int64(*v))...)
		}
	}
	return errs
}

// validateSchedule parses the schedule as the API server does (cron.ParseStandard,
// which may panic on some input).
func validateSchedule(p *field.Path, schedule string) (errs field.ErrorList) {
	if err := parseSchedule(schedule); err != nil {
		errs = append(errs, field.Invalid(p, schedule, err.Error()))
	}
	if strings.Contains(schedule, "TZ") {
		errs = append(errs, field.Invalid(p, schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
	}
	return errs
}

func parseSchedule(schedule string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("invalid schedule format: %v", r)
		}
	}()
	_, err = cron.ParseStandard(schedule)
	return err
}

// tzPart is one component of an IANA time zone name, as the API server accepts it.
var tzPart = regexp.MustCompile(`^[A-Za-z\.\-_0-9+]{1,14}$`)

func validateTimeZone(p *field.Path, tz string) field.ErrorList {
	if tz == "" {
		return field.ErrorList{field.Invalid(p, tz, "timeZone must be nil or non-empty string")}
	}
	for _, part := range strings.Split(tz, "/") {
		if part == "." || part == ".." || strings.HasPrefix(part, "-") || !tzPart.MatchString(part) {
			return field.ErrorList{field.Invalid(p, tz, "unknown time zone "+tz)}
		}
	}
	if strings.EqualFold(tz, "Local") {
		return field.ErrorList{field.Invalid(p, tz, "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones")}
	}
	if _, err := time.LoadLocation(tz); err != nil {
		return field.ErrorList{field.Invalid(p, tz, err.Error())}
	}
	return nil
}
