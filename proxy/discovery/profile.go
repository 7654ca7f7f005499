package discovery

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"regexp"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	meshv1 "github.com/meshplane/mesh/controlplane/api/mesh/v1"
)

// profileWatch is one shared GetProfile stream, dropped when Profile has not been
// called for IdleTimeout.
type profileWatch struct {
	profile  atomic.Pointer[Profile]
	answered chan struct{}
	lastUsed atomic.Int64 // unix nanoseconds
	cancel   context.CancelFunc
}

// Profile returns the current profile for authority (nil if none; shared, do not
// modify), starting a watch.
// The first call for an authority usually returns nil: the answer comes later.
func (c *Client) Profile(authority string) *Profile {
	if w := c.profileWatch(authority); w != nil {
		return w.profile.Load()
	}
	return nil
}

// WaitProfile is Profile, waiting up to ctx's end for the first answer.
func (c *Client) WaitProfile(ctx context.Context, authority string) *Profile {
	w := c.profileWatch(authority)
	if w == nil {
		return nil
	}
	select {
	case <-w.answered:
	case <-ctx.Done():
	}
	return w.profile.Load()
}

func (c *Client) profileWatch(authority string) *profileWatch {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	w := c.profiles[authority]
	if w == nil {
		ctx, cancel := context.WithCancel(c.ctx)
		w = &profileWatch{answered: make(chan struct{}), cancel: cancel}
		w.lastUsed.Store(c.o.Now().UnixNano())
		c.profiles[authority] = w
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.watch(ctx, "profile", authority, func(ctx context.Context) (func() error, error) {
				return c.openProfile(ctx, authority, w)
			})
		}()
		c.scheduleProfileIdle(authority, w, c.o.IdleTimeout)
	}
	w.lastUsed.Store(c.o.Now().UnixNano())
	return w
}

// scheduleProfileIdle checks after d whether w was used in the last IdleTimeout,
// and drops it if not.
func (c *Client) scheduleProfileIdle(authority string, w *profileWatch, d time.Duration) {
	time.AfterFunc(d, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.profiles[authority] != w {
			return
		}
		idle := c.o.Now().Sub(time.Unix(0, w.lastUsed.Load()))
		if idle < c.o.IdleTimeout {
			c.scheduleProfileIdle(authority, w, c.o.IdleTimeout-idle)
			return
		}
		delete(c.profiles, authority)
		w.cancel()
		c.log.Debug("profile watch dropped (idle)", "authority", authority)
	})
}

// openProfile opens a GetProfile stream; each answer replaces the profile.
func (c *Client) openProfile(ctx context.Context, authority string, w *profileWatch) (func() error, error) {
	stream, err := c.api.GetProfile(ctx, &meshv1.GetDestination{Path: authority, ContextToken: c.o.ContextToken})
	if err != nil {
		return nil, err
	}
	first := true
	return func() error {
		dp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return errEnded
		}
		if err != nil {
			return err
		}
		w.profile.Store(convertProfile(dp, c.log.With("authority", authority)))
		if first {
			first = false
			select {
			case <-w.answered:
			default:
				close(w.answered)
			}
		}
		return nil
	}, nil
}

// convertProfile converts an answer; an empty one is no profile (nil). Routes whose
// path_regex does not compile are skipped.
func convertProfile(dp *meshv1.DestinationProfile, log *slog.Logger) *Profile {
	if proto.Size(dp) == 0 {
		return nil
	}
	p := &Profile{Name: dp.GetFullyQualifiedName(), Opaque: dp.GetOpaqueProtocol()}
	for _, r := range dp.GetRoutes() {
		route := Route{Name: r.GetName(), Method: r.GetCondition().GetMethod(), Retryable: r.GetIsRetryable(),
			Timeout: r.GetTimeout().AsDuration()}
		if r.GetTimeout() == nil || route.Timeout < 0 {
			route.Timeout = 0
		}
		if re := r.GetCondition().GetPathRegex(); re != "" {
			compiled, err := regexp.Compile("^(?:" + re + ")$")
			if err != nil {
				log.Warn("skipping a route whose path_regex does not compile", "route", r.GetName(), "path_regex", re, "err", err)
				continue
			}
			route.Path = compiled
		}
		p.Routes = append(p.Routes, route)
	}
	if b := dp.GetRetryBudget(); b != nil {
		// float32 on the wire: 0.2 arrives as 0.2000000029...; keep 6 decimals.
		p.RetryRatio = math.Round(float64(b.GetRetryRatio())*1e6) / 1e6
		p.MinRetries = int(b.GetMinRetriesPerSecond())
		if b.GetTtl() != nil {
			p.RetryTTL = max(b.GetTtl().AsDuration(), 0)
		}
	}
	return p
}
