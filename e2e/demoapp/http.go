package main

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// statusRecorder remembers the status a handler wrote, for the log line.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(p []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

// httpHandler is the HTTP server's handler: every response carries X-Served-By and
// is logged as "PEER-IP METHOD PATH STATUS".
func (a *app) httpHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Served-By", a.pod)
		rec := &statusRecorder{ResponseWriter: w}
		a.route(rec, r)
		if rec.code == 0 {
			rec.code = http.StatusOK
		}
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		a.logger.Printf("%s %s %s %d", host, r.Method, r.URL.RequestURI(), rec.code)
	})
}

// route dispatches on the path itself rather than through a ServeMux, so that any
// path, cleaned or not, gets an answer rather than a redirect.
func (a *app) route(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch p {
	case "/healthz":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok"))
		return
	case "/delay":
		a.setDelay(w, r)
		return
	}
	if err := a.wait(r.Context()); err != nil {
		a.hello(w, r, http.StatusServiceUnavailable, "error: "+err.Error())
		return
	}
	switch {
	case strings.HasPrefix(p, "/status/"):
		code, err := strconv.Atoi(strings.TrimPrefix(p, "/status/"))
		if err != nil || code < 200 || code > 599 {
			a.hello(w, r, http.StatusBadRequest, "error: want /status/NNN with NNN in 200-599")
			return
		}
		a.hello(w, r, code)
	case p == "/sleep":
		d, err := duration(r)
		if err != nil {
			a.hello(w, r, http.StatusBadRequest, "error: "+err.Error())
			return
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			a.hello(w, r, http.StatusOK, "slept: "+d.String())
		case <-r.Context().Done():
			a.hello(w, r, http.StatusServiceUnavailable, "error: canceled while sleeping")
		}
	case p == "/flaky":
		n := a.flaky.Add(1)
		code := http.StatusOK
		if n%2 == 1 {
			code = http.StatusInternalServerError
		}
		a.hello(w, r, code, "flaky: request "+strconv.FormatUint(n, 10))
	default:
		a.hello(w, r, http.StatusOK)
	}
}

// setDelay serves /delay: d=DUR sets the replica's delay, d=0 clears it; without d it
// only reports it.
func (a *app) setDelay(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Has("d") {
		d, err := duration(r)
		if err != nil {
			a.hello(w, r, http.StatusBadRequest, "error: "+err.Error())
			return
		}
		a.delay.Store(int64(d))
		a.logger.Printf("delay set to %s", d)
	}
	a.hello(w, r, http.StatusOK, "delay: "+time.Duration(a.delay.Load()).String())
}

// duration is the request's d parameter, a non-negative time.ParseDuration.
func duration(r *http.Request) (time.Duration, error) {
	s := r.URL.Query().Get("d")
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("bad d=%q: %w", s, err)
	}
	if d < 0 {
		return 0, fmt.Errorf("bad d=%q: negative", s)
	}
	return d, nil
}

// hello writes the greeting with status code: "hello from NAME: METHOD URI (Host:
// HOST), my peer is ADDR", "pod: POD", then the extra lines.
func (a *app) hello(w http.ResponseWriter, r *http.Request, code int, extra ...string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = fmt.Fprintf(w, "hello from %s: %s %s (Host: %s), my peer is %s\npod: %s\n",
		a.name, r.Method, r.URL.RequestURI(), r.Host, r.RemoteAddr, a.pod)
	for _, l := range extra {
		_, _ = fmt.Fprintln(w, l)
	}
}
