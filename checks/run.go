package checks

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// DefaultInterval is the time between attempts of a Retry check when Options.Interval is 0.
const DefaultInterval = time.Second

// Options tune Run. The zero value runs every check once, with the real clock.
type Options struct {
	// Wait is how long Retry checks are retried after a failure; 0 means no retries.
	Wait time.Duration
	// Interval between attempts; DefaultInterval when 0.
	Interval time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Sleep waits d or until ctx is done (returning ctx.Err()); a real timer when nil.
	Sleep func(ctx context.Context, d time.Duration) error
}

func (o Options) withDefaults() Options {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = Sleep
	}
	return o
}

// Sleep waits d, or until ctx is done (its error then): the real clock's Sleep of
// Options, and of other waits that take an injected sleeper.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// outcome is what a finished check means for the checks that depend on it.
type outcome int

const (
	outcomeOK         outcome = iota // passed, or skipped on purpose: dependents run
	outcomeFailed                    // dependents are skipped
	outcomeSkippedDep                // skipped because of a dependency: dependents are skipped too
)

// Run runs the checks in the given order and never panics because of one. A check runs
// even after an earlier independent check failed; a check whose dependency failed (or
// was itself skipped because of a dependency) is skipped. A failing Retry check is run
// again every Interval until it passes or Wait has passed. Once ctx is done, the checks
// not yet started fail with "not run". Call Validate first: Run treats an unknown
// dependency like a failed one.
func Run(ctx context.Context, checks []Check, opts Options) Report {
	opts = opts.withDefaults()
	done := make(map[string]outcome, len(checks))
	report := Report{Results: make([]Result, 0, len(checks))}
	for _, c := range checks {
		res := runOne(ctx, c, done, opts)
		switch {
		case res.Status == Failed:
			done[c.ID] = outcomeFailed
		case res.Status == Skipped && res.Attempts == 0:
			done[c.ID] = outcomeSkippedDep
		default:
			done[c.ID] = outcomeOK
		}
		report.Results = append(report.Results, res)
	}
	return report
}

func runOne(ctx context.Context, c Check, done map[string]outcome, opts Options) Result {
	for _, dep := range c.DependsOn {
		o, ok := done[dep]
		switch {
		case !ok:
			return Result{Check: c, Status: Skipped, Message: fmt.Sprintf("depends on %s, which has not run", dep)}
		case o == outcomeFailed:
			return Result{Check: c, Status: Skipped, Message: fmt.Sprintf("depends on %s, which failed", dep)}
		case o == outcomeSkippedDep:
			return Result{Check: c, Status: Skipped, Message: fmt.Sprintf("depends on %s, which was skipped", dep)}
		}
	}
	if err := ctx.Err(); err != nil {
		return Result{Check: c, Status: Failed, Message: fmt.Sprintf("not run: %v", err)}
	}

	start := opts.Now()
	res := Result{Check: c}
	for {
		res.Attempts++
		err := attempt(ctx, c)
		switch {
		case err == nil:
			res.Status, res.Message = Passed, ""
		case errors.Is(err, ErrSkipped):
			res.Status, res.Message = Skipped, skipReason(err)
		default:
			res.Status, res.Message = Failed, err.Error()
		}
		elapsed := opts.Now().Sub(start)
		res.Duration = elapsed
		if res.Status != Failed || !c.Retry || opts.Wait <= 0 || elapsed >= opts.Wait {
			return res
		}
		if err := opts.Sleep(ctx, min(opts.Interval, opts.Wait-elapsed)); err != nil {
			res.Duration = opts.Now().Sub(start)
			return res
		}
	}
}

// attempt calls c.Run once, turning a panic into an error.
func attempt(ctx context.Context, c Check) (err error) {
	defer func() {
		if v := recover(); v != nil {
			if e, ok := v.(error); ok {
				err = fmt.Errorf("check panicked: %w", e)
			} else {
				err = fmt.Errorf("check panicked: %v", v)
			}
		}
	}()
	if c.Run == nil {
		return errors.New("check has no Run func")
	}
	return c.Run(ctx)
}
