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

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"

	"github.com/meshplane/mesh/controlplane/api/proxyenv"
)

// ProxyContainer is the injected proxy's container name (render/inject's).
const ProxyContainer = "mesh-proxy"

// Resolve finds the running meshed pods of resource (KIND/NAME: deploy, sts, ds, rs,
// job, svc, pod, or ns/NAME for every pod of a namespace) in namespace. It needs get
// on the resource and list on pods. Note: viz/stat will need the same resolution;
// when it has one, this should become that.
func Resolve(ctx context.Context, cs kubernetes.Interface, namespace, resource string) ([]Pod, error) {
	kind, name, ok := strings.Cut(resource, "/")
	if !ok || name == "" {
		return nil, fmt.Errorf("resource %q: want KIND/NAME, such as deploy/web", resource)
	}
	var sel labels.Selector
	var err error
	get := metav1.GetOptions{}
	switch strings.ToLower(kind) {
	case "deploy", "deployment", "deployments":
		d, gerr := cs.AppsV1().Deployments(namespace).Get(ctx, name, get)
		if err = gerr; err == nil {
			sel, err = metav1.LabelSelectorAsSelector(d.Spec.Selector)
		}
	case "sts", "statefulset", "statefulsets":
		s, gerr := cs.AppsV1().StatefulSets(namespace).Get(ctx, name, get)
		if err = gerr; err == nil {
			sel, err = metav1.LabelSelectorAsSelector(s.Spec.Selector)
		}
	case "ds", "daemonset", "daemonsets":
		s, gerr := cs.AppsV1().DaemonSets(namespace).Get(ctx, name, get)
		if err = gerr; err == nil {
			sel, err = metav1.LabelSelectorAsSelector(s.Spec.Selector)
		}
	case "rs", "replicaset", "replicasets":
		s, gerr := cs.AppsV1().ReplicaSets(namespace).Get(ctx, name, get)
		if err = gerr; err == nil {
			sel, err = metav1.LabelSelectorAsSelector(s.Spec.Selector)
		}
	case "job", "jobs":
		j, gerr := cs.BatchV1().Jobs(namespace).Get(ctx, name, get)
		if err = gerr; err == nil {
			sel, err = metav1.LabelSelectorAsSelector(j.Spec.Selector)
		}
	case "svc", "service", "services":
		s, gerr := cs.CoreV1().Services(namespace).Get(ctx, name, get)
		if err = gerr; err == nil {
			if len(s.Spec.Selector) == 0 {
				return nil, fmt.Errorf("service %s/%s has no selector: no pods to tap", namespace, name)
			}
			sel = labels.SelectorFromSet(s.Spec.Selector)
		}
	case "po", "pod", "pods":
		p, gerr := cs.CoreV1().Pods(namespace).Get(ctx, name, get)
		if gerr != nil {
			return nil, fmt.Errorf("pod %s/%s: %w", namespace, name, gerr)
		}
		if !tappable(p) {
			return nil, fmt.Errorf("pod %s/%s is not a running meshed pod (no running %s container)", namespace, name, ProxyContainer)
		}
		return []Pod{{Namespace: namespace, Name: name}}, nil
	case "ns", "namespace", "namespaces":
		namespace, sel = name, labels.Everything()
	default:
		return nil, fmt.Errorf("resource %q: unknown kind %q (deploy, sts, ds, rs, job, svc, pod, ns)", resource, kind)
	}
	if err != nil {
		return nil, fmt.Errorf("%s in namespace %s: %w", resource, namespace, err)
	}
	list, err := cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, fmt.Errorf("listing the pods of %s in namespace %s: %w", resource, namespace, err)
	}
	var pods []Pod
	for i := range list.Items {
		if tappable(&list.Items[i]) {
			pods = append(pods, Pod{Namespace: namespace, Name: list.Items[i].Name})
		}
	}
	if len(pods) == 0 {
		return nil, fmt.Errorf("%s in namespace %s has no running meshed pod (of %d pods)", resource, namespace, len(list.Items))
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	return pods, nil
}

// tappable: running, with the proxy container running.
func tappable(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, s := range append(p.Status.ContainerStatuses, p.Status.InitContainerStatuses...) {
		if s.Name == ProxyContainer && s.State.Running != nil {
			return true
		}
	}
	return false
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
