package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// requestTimeout bounds every request: dial, exchange and reading the answer.
const requestTimeout = 5 * time.Second

// maxBody is how much of an HTTP body is read (and so the connection kept alive).
const maxBody = 1 << 20

// result is one request's outcome: whether it was ok, the pod that answered (if it
// said) and a key, the status (HTTP code, gRPC code name, "ok" for TCP) or a short
// error.
type result struct {
	ok  bool
	pod string
	key string
}

// requester sends one request per call of do.
type requester interface {
	do(ctx context.Context) result
	close() error
}

func newRequester(mode, target string, concurrency int) (requester, error) {
	switch mode {
	case "http":
		return newHTTPRequester(target, concurrency)
	case "grpc":
		cc, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, fmt.Errorf("grpc target %q: %w", target, err)
		}
		return &grpcRequester{cc: cc, client: testpb.NewTestServiceClient(cc)}, nil
	case "tcp":
		if _, _, err := net.SplitHostPort(target); err != nil {
			return nil, fmt.Errorf("tcp target %q: %w", target, err)
		}
		return &tcpRequester{target: target}, nil
	}
	return nil, fmt.Errorf("mode %q: want http, grpc or tcp", mode)
}

// httpRequester GETs the URL through one keep-alive client; the pod is X-Served-By.
type httpRequester struct {
	client *http.Client
	url    string
	header http.Header // sent with every request (POST /run's header parameters)
}

func newHTTPRequester(target string, concurrency int) (*httpRequester, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("http target: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("http target %q: want http://HOST[:PORT]/PATH", target)
	}
	tr := &http.Transport{
		Proxy:               nil, // straight to the target: the mesh is the proxy
		DialContext:         (&net.Dialer{Timeout: requestTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        concurrency,
		MaxIdleConnsPerHost: concurrency,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: requestTimeout,
	}
	return &httpRequester{
		client: &http.Client{
			Transport: tr,
			Timeout:   requestTimeout,
			// A redirect is an answer, not something to follow.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		url: u.String(),
	}, nil
}

func (h *httpRequester) do(ctx context.Context) result {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.url, nil)
	if err != nil {
		return result{key: shortError(err)}
	}
	for k, vs := range h.header {
		req.Header[k] = vs
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return result{key: shortError(err)}
	}
	defer resp.Body.Close()
	r := result{pod: resp.Header.Get("X-Served-By"), key: strconv.Itoa(resp.StatusCode)}
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody)); err != nil {
		r.key = shortError(err)
		return r
	}
	r.ok = resp.StatusCode >= 200 && resp.StatusCode < 300
	return r
}

func (h *httpRequester) close() error {
	h.client.CloseIdleConnections()
	return nil
}

// grpcRequester calls grpc.testing.TestService/UnaryCall on one ClientConn; the pod
// is the x-served-by header metadata.
type grpcRequester struct {
	cc     *grpc.ClientConn
	client testpb.TestServiceClient
}

func (g *grpcRequester) do(ctx context.Context) result {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var md metadata.MD
	_, err := g.client.UnaryCall(ctx, &testpb.SimpleRequest{}, grpc.Header(&md))
	r := result{key: status.Code(err).String(), ok: err == nil}
	if v := md.Get("x-served-by"); len(v) > 0 {
		r.pod = v[0]
	}
	return r
}

func (g *grpcRequester) close() error {
	if err := g.cc.Close(); err != nil {
		return fmt.Errorf("grpc close: %w", err)
	}
	return nil
}

// tcpRequester opens a connection per request, reads "HELLO NAME POD", writes one
// line and reads the answer "NAME POD: LINE"; the pod is the answer's (or, when
// there is none, the greeting's).
type tcpRequester struct {
	target string
	seq    atomic.Uint64
}

func (t *tcpRequester) do(ctx context.Context) result {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", t.target)
	if err != nil {
		return result{key: shortError(err)}
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	br := bufio.NewReaderSize(c, 4096)
	hello, err := readLine(br)
	if err != nil {
		return result{key: shortError(err)}
	}
	f := strings.Fields(hello)
	if len(f) != 3 || f[0] != "HELLO" {
		return result{key: "bad hello"}
	}
	r := result{pod: f[2]}
	line := "ping " + strconv.FormatUint(t.seq.Add(1), 10)
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		r.key = shortError(err)
		return r
	}
	answer, err := readLine(br)
	if err != nil {
		r.key = shortError(err)
		return r
	}
	who, echo, found := strings.Cut(answer, ": ")
	wf := strings.Fields(who)
	if !found || len(wf) != 2 || echo != line {
		r.key = "bad answer"
		return r
	}
	r.pod = wf[1]
	r.ok, r.key = true, "ok"
	return r
}

func (t *tcpRequester) close() error { return nil }

// readLine reads one line (at most the reader's buffer) without its end.
func readLine(br *bufio.Reader) (string, error) {
	b, err := br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return "", errors.New("line too long")
		}
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// shortError names an error for the errors map: a few well-known kinds by name, the
// rest by their innermost message, shortened.
func shortError(err error) string {
	var dns *net.DNSError
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "unreachable"
	case errors.As(err, &dns):
		return "dns: " + dns.Err
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "EOF"
	}
	if s, ok := status.FromError(err); ok && s.Code() != codes.Unknown {
		return s.Code().String()
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	if len(msg) > 60 {
		msg = msg[:60]
	}
	return msg
}
