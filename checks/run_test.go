package checks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// fakeClock is a clock that only moves when the runner sleeps.
type fakeClock struct {
	now    time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return nil
}

func (c *fakeClock) options(wait time.Duration) Options {
	return Options{Wait: wait, Interval: time.Second, Now: c.Now, Sleep: c.Sleep}
}

func pass(context.Context) error { return nil }

func statuses(r Report) string {
	var b strings.Builder
	for _, res := range r.Results {
		fmt.Fprintf(&b, "%s=%s ", res.Check.ID, res.Status)
	}
	return strings.TrimSpace(b.String())
}

func TestRunOrderAndIndependentChecksAfterFailure(t *testing.T) {
	var order []string
	record := func(id string, err error) func(context.Context) error {
		return func(context.Context) error { order = append(order, id); return err }
	}
	cs := []Check{
		{ID: "a.one", Run: record("a.one", nil)},
		{ID: "a.two", Run: record("a.two", errors.New("broken"))},
		{ID: "b.three", Run: record("b.three", nil)},
		{ID: "b.four", Severity: Warning, Run: record("b.four", errors.New("meh"))},
		{ID: "b.five", Run: record("b.five", nil)},
	}
	clk := newFakeClock()
	r := Run(context.Background(), cs, clk.options(0))

	if got, want := strings.Join(order, ","), "a.one,a.two,b.three,b.four,b.five"; got != want {
		t.Errorf("run order = %s, want %s", got, want)
	}
	if got, want := statuses(r), "a.one=passed a.two=failed b.three=passed b.four=failed b.five=passed"; got != want {
		t.Errorf("statuses = %s, want %s", got, want)
	}
	if got := r.Results[1].Message; got != "broken" {
		t.Errorf("message = %q, want %q", got, "broken")
	}
	for _, res := range r.Results {
		if res.Attempts != 1 {
			t.Errorf("%s: attempts = %d, want 1", res.Check.ID, res.Attempts)
		}
	}
}

func TestRunSkipsDependentsTransitively(t *testing.T) {
	ran := map[string]bool{}
	mark := func(id string, err error) func(context.Context) error {
		return func(context.Context) error { ran[id] = true; return err }
	}
	cs := []Check{
		{ID: "api", Run: mark("api", errors.New("unreachable"))},
		{ID: "crds", DependsOn: []string{"api"}, Run: mark("crds", nil)},
		{ID: "webhook", DependsOn: []string{"crds"}, Run: mark("webhook", nil)},
		{ID: "local", Run: mark("local", nil)},
		{ID: "both", DependsOn: []string{"local", "webhook"}, Run: mark("both", nil)},
		{ID: "optional", Run: mark("optional", Skip("no webhook in these manifests"))},
		{ID: "after-optional", DependsOn: []string{"optional", "local"}, Run: mark("after-optional", nil)},
	}
	r := Run(context.Background(), cs, newFakeClock().options(0))

	want := "api=failed crds=skipped webhook=skipped local=passed both=skipped optional=skipped after-optional=passed"
	if got := statuses(r); got != want {
		t.Errorf("statuses = %s\nwant       %s", got, want)
	}
	msgs := map[string]string{
		"crds":     "depends on api, which failed",
		"webhook":  "depends on crds, which was skipped",
		"both":     "depends on webhook, which was skipped",
		"optional": "no webhook in these manifests",
	}
	for _, res := range r.Results {
		if want, ok := msgs[res.Check.ID]; ok && res.Message != want {
			t.Errorf("%s: message = %q, want %q", res.Check.ID, res.Message, want)
		}
	}
	for _, id := range []string{"crds", "webhook", "both"} {
		if ran[id] {
			t.Errorf("%s ran although a dependency failed", id)
		}
	}
	if !ran["after-optional"] {
		t.Error("a check depending on a deliberately skipped check did not run")
	}
}

func TestRunErrSkipped(t *testing.T) {
	cs := []Check{
		{ID: "wrapped", Run: func(context.Context) error {
			return fmt.Errorf("no webhook in these manifests: %w", ErrSkipped)
		}},
		{ID: "bare", Run: func(context.Context) error { return ErrSkipped }},
		{ID: "helper", Retry: true, Run: func(context.Context) error { return Skip("not on this platform") }},
	}
	clk := newFakeClock()
	r := Run(context.Background(), cs, clk.options(10*time.Second))
	want := []string{"no webhook in these manifests", "skipped", "not on this platform"}
	for i, res := range r.Results {
		if res.Status != Skipped || res.Message != want[i] || res.Attempts != 1 {
			t.Errorf("%s: got %s %q attempts=%d, want skipped %q attempts=1",
				res.Check.ID, res.Status, res.Message, res.Attempts, want[i])
		}
	}
	if r.ExitCode(true) != 0 {
		t.Error("deliberate skips must not fail the report")
	}
	if len(clk.sleeps) != 0 {
		t.Errorf("a skipped Retry check was retried: sleeps %v", clk.sleeps)
	}
}

func TestRunRetry(t *testing.T) {
	t.Run("passes on third attempt", func(t *testing.T) {
		n := 0
		cs := []Check{{ID: "ready", Retry: true, Run: func(context.Context) error {
			n++
			if n < 3 {
				return fmt.Errorf("attempt %d: not ready", n)
			}
			return nil
		}}}
		clk := newFakeClock()
		r := Run(context.Background(), cs, clk.options(10*time.Second))
		res := r.Results[0]
		if res.Status != Passed || res.Attempts != 3 || res.Message != "" {
			t.Errorf("got %s attempts=%d message=%q, want passed attempts=3", res.Status, res.Attempts, res.Message)
		}
		if res.Duration != 2*time.Second {
			t.Errorf("duration = %v, want 2s (by the fake clock)", res.Duration)
		}
	})

	t.Run("never passes stops at Wait", func(t *testing.T) {
		n := 0
		cs := []Check{
			{ID: "never", Retry: true, Run: func(context.Context) error { n++; return fmt.Errorf("attempt %d: not ready", n) }},
			{ID: "next", Run: pass},
		}
		clk := newFakeClock()
		start := clk.now
		opts := clk.options(10 * time.Second)
		opts.Interval = 3 * time.Second
		r := Run(context.Background(), cs, opts)
		res := r.Results[0]
		// Attempts at 0s, 3s, 6s, 9s and, with the last sleep cut to what is left, 10s.
		if res.Status != Failed || res.Attempts != 5 {
			t.Errorf("got %s attempts=%d, want failed attempts=5", res.Status, res.Attempts)
		}
		if res.Message != "attempt 5: not ready" {
			t.Errorf("message = %q, want the last attempt's", res.Message)
		}
		if got := clk.now.Sub(start); got != 10*time.Second {
			t.Errorf("fake clock moved %v, want exactly the 10s Wait", got)
		}
		if got := fmt.Sprint(clk.sleeps); got != "[3s 3s 3s 1s]" {
			t.Errorf("sleeps = %s, want [3s 3s 3s 1s]", got)
		}
		if r.Results[1].Status != Passed {
			t.Error("the next check did not run after the retries")
		}
	})

	t.Run("no retry without Wait", func(t *testing.T) {
		n := 0
		cs := []Check{{ID: "ready", Retry: true, Run: func(context.Context) error { n++; return errors.New("not ready") }}}
		clk := newFakeClock()
		r := Run(context.Background(), cs, clk.options(0))
		if r.Results[0].Attempts != 1 || n != 1 || len(clk.sleeps) != 0 {
			t.Errorf("attempts=%d calls=%d sleeps=%v, want one attempt and no sleep", r.Results[0].Attempts, n, clk.sleeps)
		}
	})

	t.Run("no retry without Retry", func(t *testing.T) {
		n := 0
		cs := []Check{{ID: "static", Run: func(context.Context) error { n++; return errors.New("wrong") }}}
		clk := newFakeClock()
		r := Run(context.Background(), cs, clk.options(10*time.Second))
		if r.Results[0].Attempts != 1 || n != 1 {
			t.Errorf("attempts=%d calls=%d, want 1", r.Results[0].Attempts, n)
		}
	})

	t.Run("cancelled context stops retrying", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		n := 0
		cs := []Check{
			{ID: "ready", Retry: true, Run: func(context.Context) error {
				n++
				if n == 2 {
					cancel()
				}
				return errors.New("not ready")
			}},
			{ID: "later", Run: pass},
		}
		clk := newFakeClock()
		r := Run(ctx, cs, clk.options(time.Hour))
		if got := r.Results[0]; got.Status != Failed || got.Attempts != 2 {
			t.Errorf("got %s attempts=%d, want failed after 2 attempts", got.Status, got.Attempts)
		}
		if got := r.Results[1]; got.Status != Failed || got.Attempts != 0 || !strings.Contains(got.Message, "context canceled") {
			t.Errorf("later check: %s attempts=%d %q, want failed, not run, context canceled", got.Status, got.Attempts, got.Message)
		}
	})
}

func TestRunDefaultsUseRealClock(t *testing.T) {
	r := Run(context.Background(), []Check{{ID: "x", Run: pass}}, Options{})
	if r.Results[0].Status != Passed || r.Results[0].Duration < 0 {
		t.Errorf("got %+v", r.Results[0])
	}
}

func TestRunCatchesPanics(t *testing.T) {
	cs := []Check{
		{ID: "boom", Run: func(context.Context) error { panic("nil map in webhook check") }},
		{ID: "boom-err", Run: func(context.Context) error { panic(fmt.Errorf("wrapped %w", context.DeadlineExceeded)) }},
		{ID: "dependent", DependsOn: []string{"boom"}, Run: pass},
		{ID: "fine", Run: pass},
		{ID: "no-run"},
	}
	r := Run(context.Background(), cs, newFakeClock().options(0))
	if got, want := statuses(r), "boom=failed boom-err=failed dependent=skipped fine=passed no-run=failed"; got != want {
		t.Errorf("statuses = %s, want %s", got, want)
	}
	if msg := r.Results[0].Message; !strings.Contains(msg, "nil map in webhook check") || !strings.Contains(msg, "panic") {
		t.Errorf("message = %q, want it to name the panic", msg)
	}
	if msg := r.Results[1].Message; !strings.Contains(msg, "deadline exceeded") {
		t.Errorf("message = %q, want the panicked error", msg)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		checks []Check
		want   []string // substrings of the error; none means valid
	}{
		{name: "empty list"},
		{name: "valid", checks: []Check{
			{ID: "a", Run: pass},
			{ID: "b", DependsOn: []string{"a"}, Run: pass},
		}},
		{name: "duplicate", checks: []Check{{ID: "a", Run: pass}, {ID: "a", Run: pass}},
			want: []string{"check a: duplicate ID"}},
		{name: "unknown dependency", checks: []Check{{ID: "a", DependsOn: []string{"nope"}, Run: pass}},
			want: []string{"check a: depends on unknown check nope"}},
		{name: "later dependency", checks: []Check{{ID: "a", DependsOn: []string{"b"}, Run: pass}, {ID: "b", Run: pass}},
			want: []string{"check a: depends on b, which comes after it"}},
		{name: "self", checks: []Check{{ID: "a", DependsOn: []string{"a"}, Run: pass}},
			want: []string{"check a: depends on itself"}},
		{name: "empty ID and no Run", checks: []Check{{Description: "x", Run: pass}, {ID: "b"}},
			want: []string{`check 0 ("x"): empty ID`, "check b: no Run func"}},
		{name: "all problems at once", checks: []Check{
			{ID: "a", DependsOn: []string{"zzz"}, Run: pass},
			{ID: "a", Run: pass},
		}, want: []string{"duplicate ID", "unknown check zzz"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.checks)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: nil, want an error with %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate: %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	res := func(sev Severity, st Status) Result {
		return Result{Check: Check{ID: "x", Severity: sev}, Status: st}
	}
	tests := []struct {
		name          string
		results       []Result
		plain, strict int // ExitCode(false), ExitCode(true)
	}{
		{"empty", nil, 0, 0},
		{"all passed", []Result{res(Error, Passed), res(Warning, Passed)}, 0, 0},
		{"warning failed", []Result{res(Error, Passed), res(Warning, Failed)}, 0, 1},
		{"error failed", []Result{res(Error, Failed), res(Warning, Passed)}, 1, 1},
		{"both failed", []Result{res(Error, Failed), res(Warning, Failed)}, 1, 1},
		{"skipped only", []Result{res(Error, Skipped), res(Warning, Skipped)}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Report{Results: tt.results}
			if got := r.ExitCode(false); got != tt.plain {
				t.Errorf("ExitCode(false) = %d, want %d", got, tt.plain)
			}
			if got := r.ExitCode(true); got != tt.strict {
				t.Errorf("ExitCode(true) = %d, want %d", got, tt.strict)
			}
		})
	}
}

func TestFailedAndStrings(t *testing.T) {
	r := Report{Results: []Result{
		{Check: Check{ID: "e1"}, Status: Failed},
		{Check: Check{ID: "w1", Severity: Warning}, Status: Failed},
		{Check: Check{ID: "e2"}, Status: Passed},
		{Check: Check{ID: "e3"}, Status: Failed},
	}}
	var ids []string
	for _, res := range r.Failed(Error) {
		ids = append(ids, res.Check.ID)
	}
	if got := strings.Join(ids, ","); got != "e1,e3" {
		t.Errorf("Failed(Error) = %s, want e1,e3", got)
	}
	if got := len(r.Failed(Warning)); got != 1 {
		t.Errorf("len(Failed(Warning)) = %d, want 1", got)
	}
	for v, want := range map[fmt.Stringer]string{
		Error: "error", Warning: "warning", Severity(7): "Severity(7)",
		Passed: "passed", Failed: "failed", Skipped: "skipped", Status(9): "Status(9)",
	} {
		if got := v.String(); got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
	}
}
