package dataplane

// grpc-go's interop suite (google.golang.org/grpc/interop, the functions its
// interop client runs, against the server its interop server registers), run
// unchanged through the mesh: the interop client dials the client proxy's outbound
// listener in plaintext h2c, like an app; the client proxy carries the calls over
// mTLS to the server proxy, which hands them to the interop server, in plaintext
// h2c, as its app. Each case also runs directly client → server, as a control, so
// that a failure through the mesh is the proxies'.
//
// The interop functions report a failure with grpclog's Fatal, which logs and then
// exits the process. TestMain installs a grpclog logger whose Fatal panics with an
// interopFailure instead (grpclog calls the logger before os.Exit); runInterop
// recovers it in the goroutine that ran the case and fails that subtest with the
// library's own message.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/grpclog"
	"google.golang.org/grpc/interop"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
)

func TestMain(m *testing.M) {
	// Errors to stderr, as grpclog's default logger, and infos and warnings too with
	// GRPC_GO_LOG_SEVERITY_LEVEL=info or warning.
	info, warning := io.Discard, io.Discard
	switch strings.ToLower(os.Getenv("GRPC_GO_LOG_SEVERITY_LEVEL")) {
	case "info":
		info, warning = os.Stderr, os.Stderr
	case "warning":
		warning = os.Stderr
	}
	// Before any test, so before gRPC logs anything (SetLoggerV2 is not synchronized).
	grpclog.SetLoggerV2(fatalPanics{grpclog.NewLoggerV2(info, warning, os.Stderr)})
	os.Exit(m.Run())
}

// interopFailure is what fatalPanics panics with: the message of an interop
// function's logger.Fatal.
type interopFailure string

// fatalPanics is a grpclog.LoggerV2 whose Fatal functions panic with an
// interopFailure instead of exiting. It embeds only the LoggerV2 interface, so it is
// not a grpclog DepthLoggerV2: the interop package's component logger then reaches
// Fatalln.
type fatalPanics struct{ grpclog.LoggerV2 }

func (fatalPanics) Fatal(args ...any) { panic(interopFailure(fmt.Sprint(args...))) }
func (fatalPanics) Fatalf(format string, args ...any) {
	panic(interopFailure(fmt.Sprintf(format, args...)))
}
func (fatalPanics) Fatalln(args ...any) { panic(interopFailure(fmt.Sprintln(args...))) }

// interopCase is one interop test case: its name in grpc-go's interop client
// (-test_case), and the library function the client runs for it.
type interopCase struct {
	name string
	run  func(ctx context.Context, cc *grpc.ClientConn)
}

func tsc(cc *grpc.ClientConn) testgrpc.TestServiceClient { return testgrpc.NewTestServiceClient(cc) }

// interopCases returns the cases of grpc-go's interop client (interop/client) that need
// no cloud credentials, xDS or ORCA, in its order. grpc-go's interop package has no
// client_compressed_* / server_compressed_* nor half_duplex functions; the "+gzip"
// cases run the same library functions with the gzip compressor as a call option, so
// that requests are compressed and grpc-go's server compresses its responses too.
func interopCases() []interopCase {
	return []interopCase{
		{"empty_unary", func(ctx context.Context, cc *grpc.ClientConn) { interop.DoEmptyUnaryCall(ctx, tsc(cc)) }},
		{"large_unary", func(ctx context.Context, cc *grpc.ClientConn) { interop.DoLargeUnaryCall(ctx, tsc(cc)) }},
		{"client_streaming", func(ctx context.Context, cc *grpc.ClientConn) { interop.DoClientStreaming(ctx, tsc(cc)) }},
		{"server_streaming", func(ctx context.Context, cc *grpc.ClientConn) { interop.DoServerStreaming(ctx, tsc(cc)) }},
		{"ping_pong", func(ctx context.Context, cc *grpc.ClientConn) { interop.DoPingPong(ctx, tsc(cc)) }},
		{"empty_stream", func(ctx context.Context, cc *grpc.ClientConn) { interop.DoEmptyStream(ctx, tsc(cc)) }},
		{"timeout_on_sleeping_server", func(ctx context.Context, cc *grpc.ClientConn) { interop.DoTimeoutOnSleepingServer(ctx, tsc(cc)) }},
		{"cancel_after_begin", func(ctx context.Context, cc *grpc.ClientConn) { interop.DoCancelAfterBegin(ctx, tsc(cc)) }},
		{"cancel_after_first_response", func(ctx context.Context, cc *grpc.ClientConn) { interop.DoCancelAfterFirstResponse(ctx, tsc(cc)) }},
		{"status_code_and_message", func(ctx context.Context, cc *grpc.ClientConn) { interop.DoStatusCodeAndMessage(ctx, tsc(cc)) }},
		{"special_status_message", func(ctx context.Context, cc *grpc.ClientConn) { interop.DoSpecialStatusMessage(ctx, tsc(cc)) }},
		{"custom_metadata", func(ctx context.Context, cc *grpc.ClientConn) { interop.DoCustomMetadata(ctx, tsc(cc)) }},
		{"unimplemented_method", func(ctx context.Context, cc *grpc.ClientConn) { interop.DoUnimplementedMethod(ctx, cc) }},
		{"unimplemented_service", func(ctx context.Context, cc *grpc.ClientConn) {
			interop.DoUnimplementedService(ctx, testgrpc.NewUnimplementedServiceClient(cc))
		}},
		{"large_unary+gzip", func(ctx context.Context, cc *grpc.ClientConn) {
			interop.DoLargeUnaryCall(ctx, tsc(cc), grpc.UseCompressor(gzip.Name))
		}},
		{"client_streaming+gzip", func(ctx context.Context, cc *grpc.ClientConn) {
			interop.DoClientStreaming(ctx, tsc(cc), grpc.UseCompressor(gzip.Name))
		}},
		{"server_streaming+gzip", func(ctx context.Context, cc *grpc.ClientConn) {
			interop.DoServerStreaming(ctx, tsc(cc), grpc.UseCompressor(gzip.Name))
		}},
		{"ping_pong+gzip", func(ctx context.Context, cc *grpc.ClientConn) {
			interop.DoPingPong(ctx, tsc(cc), grpc.UseCompressor(gzip.Name))
		}},
	}
}

// interopServer runs grpc-go's interop server (plaintext h2c) as interop/server
// does without TLS, ALTS or ORCA: the TestService of interop.NewTestServer, and no
// UnimplementedService (unimplemented_service calls it).
func interopServer(t testing.TB) netip.AddrPort {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(s, interop.NewTestServer())
	go func() { _ = s.Serve(l) }()
	t.Cleanup(s.Stop)
	return netip.MustParseAddrPort(l.Addr().String())
}

// runInterop runs one case on a new plaintext connection to addr and fails t with
// the interop function's message if it calls Fatal (or with the panic of anything
// else). A case that hangs ends with its context's deadline, which the interop
// functions report as a failed call.
func runInterop(t *testing.T, addr string, c interopCase) {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cc.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	failed := make(chan any, 1)
	go func() {
		defer func() {
			r := recover()
			if _, ok := r.(interopFailure); !ok && r != nil {
				r = fmt.Sprintf("%v\n%s", r, debug.Stack())
			}
			failed <- r
		}()
		c.run(ctx, cc)
	}()
	switch r := (<-failed).(type) {
	case nil:
	case interopFailure:
		t.Errorf("%s: %s", c.name, r)
	default:
		t.Errorf("%s panicked: %v", c.name, r)
	}
}

func TestGRPCInterop(t *testing.T) {
	t.Parallel()
	srv := interopServer(t)
	t.Run("direct", func(t *testing.T) {
		t.Parallel()
		for _, c := range interopCases() {
			t.Run(c.name, func(t *testing.T) { runInterop(t, srv.String(), c) })
		}
	})
	// The point: client → outbound proxy → mTLS → inbound proxy → server.
	t.Run("mesh", func(t *testing.T) {
		t.Parallel()
		client, _, _ := meshPair(t, startCP(t), srv)
		for _, c := range interopCases() {
			t.Run(c.name, func(t *testing.T) { runInterop(t, client.out.Addr().String(), c) })
		}
	})
	// One proxy each, to tell which side a failure of "mesh" is on: a client proxy
	// whose destination discovery does not know (plaintext h2c to the server), and a
	// lone inbound proxy taking plaintext h2c.
	t.Run("outbound", func(t *testing.T) {
		t.Parallel()
		client := startProxy(t, startCP(t), clientID, netip.AddrPort{}, srv)
		for _, c := range interopCases() {
			t.Run(c.name, func(t *testing.T) { runInterop(t, client.out.Addr().String(), c) })
		}
	})
	t.Run("inbound", func(t *testing.T) {
		t.Parallel()
		server := plainProxy(t, srv, 2*time.Second)
		for _, c := range interopCases() {
			t.Run(c.name, func(t *testing.T) { runInterop(t, server.in.Addr().String(), c) })
		}
	})
}
