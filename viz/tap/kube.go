package tap

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"

	"github.com/meshplane/mesh/controlplane/api/proxyenv"
	"github.com/meshplane/mesh/render/inject"
	"github.com/meshplane/mesh/viz/resolve"
)

// ProxyContainer is the injected proxy's container name (render/inject's).
const ProxyContainer = inject.ProxyContainer

// Resolve finds the running meshed pods of resource (KIND/NAME: deploy, sts, ds, rs,
// job, svc, pod, or ns/NAME for every pod of a namespace) in namespace, sorted by
// name, through viz/resolve (mesh stat's resolution). It needs get on the resource
// and list on pods (a namespace: list on its pods only).
func Resolve(ctx context.Context, cs kubernetes.Interface, namespace, resource string) ([]Pod, error) {
	kind, name, ok := strings.Cut(resource, "/")
	if !ok || name == "" {
		return nil, fmt.Errorf("resource %q: want KIND/NAME, such as deploy/web", resource)
	}
	k, known := resolve.Canonical(kind)
	if !known {
		return nil, fmt.Errorf("resource %q: unknown kind %q (deploy, sts, ds, rs, job, svc, pod, ns)", resource, kind)
	}
	r := resolve.Resource{Kind: k, Namespace: namespace, Name: name}
	if k == resolve.KindNamespace {
		r.Namespace, namespace = "", name
	}
	if k == resolve.KindService {
		svcs, err := resolve.Selectors(ctx, cs, r)
		if err != nil {
			return nil, err
		}
		if svcs[0].Selector == nil {
			return nil, fmt.Errorf("service %s/%s has no selector: no pods to tap", namespace, name)
		}
	}
	targets, err := resolve.Targets(ctx, cs, r)
	if err != nil {
		return nil, err
	}
	var pods []Pod
	live := 0
	for _, t := range targets {
		for _, p := range t.Pods {
			live++
			if resolve.Tappable(p) {
				pods = append(pods, Pod{Namespace: p.Namespace, Name: p.Name})
			}
		}
	}
	if len(pods) == 0 {
		if k == resolve.KindPod {
			return nil, fmt.Errorf("pod %s/%s is not a running meshed pod (no running %s container)", namespace, name, ProxyContainer)
		}
		return nil, fmt.Errorf("%s in namespace %s has no running meshed pod (of %d pods)", resource, namespace, live)
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	return pods, nil
}

// PortForward reaches a pod's tap port through the Kubernetes API (pods/portforward,
// SPDY, as kubectl port-forward does), under the user's own RBAC: a forwarder on
// 127.0.0.1 with a random port per connection, stopped when the connection closes.
type PortForward struct {
	Config *rest.Config
	Client kubernetes.Interface
	Port   int       // the proxy's tap port (proxyenv.DefaultTapPort if zero)
	ErrOut io.Writer // the forwarder's errors (stderr)
}

// DialTap implements Dialer.
func (f PortForward) DialTap(ctx context.Context, pod Pod) (net.Conn, error) {
	port := f.Port
	if port == 0 {
		port = proxyenv.DefaultTapPort
	}
	errOut := f.ErrOut
	if errOut == nil {
		errOut = io.Discard
	}
	u := f.Client.CoreV1().RESTClient().Post().Resource("pods").Namespace(pod.Namespace).Name(pod.Name).SubResource("portforward").URL()
	rt, upgrader, err := spdy.RoundTripperFor(f.Config)
	if err != nil {
		return nil, fmt.Errorf("port-forward to %s: %w", pod, err)
	}
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: rt}, http.MethodPost, u)
	stop, ready := make(chan struct{}), make(chan struct{})
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:" + strconv.Itoa(port)}, stop, ready, io.Discard, errOut)
	if err != nil {
		return nil, fmt.Errorf("port-forward to %s: %w", pod, err)
	}
	var once sync.Once
	halt := func() { once.Do(func() { close(stop) }) }
	errc := make(chan error, 1)
	go func() { errc <- fw.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-errc:
		return nil, fmt.Errorf("port-forward to %s: %w", pod, err)
	case <-ctx.Done():
		halt()
		return nil, ctx.Err()
	}
	ports, err := fw.GetPorts()
	if err != nil || len(ports) == 0 {
		halt()
		return nil, fmt.Errorf("port-forward to %s: no local port: %v", pod, err)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(ports[0].Local))))
	if err != nil {
		halt()
		return nil, fmt.Errorf("port-forward to %s: %w", pod, err)
	}
	return &forwardedConn{Conn: c, halt: halt}, nil
}

// forwardedConn stops its forwarder when closed.
type forwardedConn struct {
	net.Conn
	halt func()
}

func (c *forwardedConn) Close() error {
	err := c.Conn.Close()
	c.halt()
	return err
}
