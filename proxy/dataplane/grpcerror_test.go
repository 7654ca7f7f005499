package dataplane

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	meshv1 "github.com/meshplane/mesh/controlplane/api/mesh/v1"
	"github.com/meshplane/mesh/proxy/proxytest"
)

// When the proxy answers a gRPC request itself, the answer is gRPC: a dead backend
// is UNAVAILABLE with the proxy's reason as the message, on the outbound side
// (h2c from the application) and the inbound side (plaintext HTTP/2 to a dead
// application), instead of an HTTP 502 that clients turn into a generic error.
func TestProxyErrorsToGRPCAreGRPC(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := netip.MustParseAddrPort(l.Addr().String())
	_ = l.Close() // nothing listens there now
	cp := startCP(t)
	outbound := startProxy(t, cp, clientID, netip.AddrPort{}, dead)
	inbound := plainProxy(t, dead, time.Second)
	for name, addr := range map[string]string{"outbound": outbound.out.Addr().String(), "inbound": inbound.in.Addr().String()} {
		t.Run(name, func(t *testing.T) {
			conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = conn.Close() }()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
			st := status.Convert(err)
			// A gRPC status from the proxy, not grpc-go's reading of an HTTP error
			// ("unexpected HTTP status code received from server: 502").
			if st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "refused") || strings.Contains(st.Message(), "HTTP status") {
				t.Errorf("got %v %q, want UNAVAILABLE with the proxy's reason", st.Code(), st.Message())
			}
		})
	}
}

func TestGRPCMessageEncoding(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"dial tcp 10.0.0.1:80: connect: connection refused": "dial tcp 10.0.0.1:80: connect: connection refused",
		"100% down\r\n": "100%25 down%0D%0A",
		"délai dépassé": "d%C3%A9lai d%C3%A9pass%C3%A9",
	} {
		if got := grpcMessage(in); got != want {
			t.Errorf("grpcMessage(%q) = %q, want %q", in, got, want)
		}
	}
}

// A ServiceProfile route timeout on a gRPC call is DEADLINE_EXCEEDED from the proxy
// (it was UNAVAILABLE, from grpc-go's reading of the 504), well before the client's
// own deadline.
func TestProxyTimeoutToGRPCIsDeadlineExceeded(t *testing.T) {
	t.Parallel()
	srv := grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
		<-stream.Context().Done() // never answers
		return stream.Context().Err()
	}))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	cp := startCP(t)
	server := startProxy(t, cp, serverID, netip.MustParseAddrPort(l.Addr().String()), netip.AddrPort{})
	svc := "10.96.0.16:80"
	cp.Set(svc, proxytest.Endpoint{Addr: server.inAddr(), Identity: serverID})
	cp.SetProfile(svc, &meshv1.DestinationProfile{FullyQualifiedName: "api.default.svc.cluster.local", Routes: []*meshv1.Route{
		{Name: "check", Condition: &meshv1.RequestMatch{PathRegex: "/grpc.health.v1.Health/Check"}, Timeout: durationpb.New(200 * time.Millisecond)},
	}})
	client := startProxy(t, cp, clientID, netip.AddrPort{}, netip.MustParseAddrPort(svc))
	conn, err := grpc.NewClient(client.out.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	hc := healthpb.NewHealthClient(conn)
	var st *status.Status
	waitFor(t, func() bool { // until the profile has reached the client proxy
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
		st = status.Convert(err)
		return st.Code() != codes.DeadlineExceeded || ctx.Err() == nil
	})
	if st.Code() != codes.DeadlineExceeded || !strings.Contains(st.Message(), "timeout") {
		t.Errorf("got %v %q, want DEADLINE_EXCEEDED from the proxy's route timeout", st.Code(), st.Message())
	}
}
