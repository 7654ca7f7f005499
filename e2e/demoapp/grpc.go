package main

import (
	"context"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// maxPayload bounds the payload UnaryCall is asked to return.
const maxPayload = 1 << 20

// newGRPCServer is the gRPC server: grpc.health.v1.Health (SERVING for "" and
// grpc.testing.TestService) and TestService's EmptyCall and UnaryCall. Every call
// carries the header metadata x-served-by: POD and is logged as "PEER-IP GRPC METHOD
// CODE".
func (a *app) newGRPCServer() (*grpc.Server, *health.Server) {
	s := grpc.NewServer(grpc.UnaryInterceptor(a.unaryLog), grpc.StreamInterceptor(a.streamLog))
	hs := health.NewServer()
	hs.SetServingStatus("grpc.testing.TestService", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s, hs)
	testpb.RegisterTestServiceServer(s, &testService{app: a})
	return s, hs
}

func (a *app) unaryLog(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	_ = grpc.SetHeader(ctx, metadata.Pairs("x-served-by", a.pod))
	resp, err := handler(ctx, req)
	a.logGRPC(ctx, info.FullMethod, err)
	return resp, err
}

func (a *app) streamLog(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	_ = ss.SetHeader(metadata.Pairs("x-served-by", a.pod))
	err := handler(srv, ss)
	a.logGRPC(ss.Context(), info.FullMethod, err)
	return err
}

func (a *app) logGRPC(ctx context.Context, method string, err error) {
	host := "-"
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		host = p.Addr.String()
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
	}
	a.logger.Printf("%s GRPC %s %s", host, method, status.Code(err))
}

// testService implements EmptyCall and UnaryCall of grpc.testing.TestService; the
// other methods answer Unimplemented.
type testService struct {
	testpb.UnimplementedTestServiceServer
	app *app
}

func (t *testService) EmptyCall(ctx context.Context, _ *testpb.Empty) (*testpb.Empty, error) {
	if err := t.app.wait(ctx); err != nil {
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return &testpb.Empty{}, nil
}

// UnaryCall answers with response_size zero bytes, or when that is 0 with "hello from
// NAME, pod POD"; server_id and hostname are the pod. A response_status with a
// non-zero code is returned as the call's status.
func (t *testService) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	if err := t.app.wait(ctx); err != nil {
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	if st := req.GetResponseStatus(); st.GetCode() != 0 {
		return nil, status.Error(codes.Code(st.GetCode()), st.GetMessage())
	}
	n := req.GetResponseSize()
	if n < 0 || n > maxPayload {
		return nil, status.Errorf(codes.InvalidArgument, "response_size %d not in 0-%d", n, maxPayload)
	}
	body := make([]byte, n)
	if n == 0 {
		body = []byte("hello from " + t.app.name + ", pod " + t.app.pod)
	}
	return &testpb.SimpleResponse{
		Payload:  &testpb.Payload{Type: testpb.PayloadType_COMPRESSABLE, Body: body},
		ServerId: t.app.pod,
		Hostname: t.app.pod,
	}, nil
}
