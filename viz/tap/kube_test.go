package tap

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/meshplane/mesh/internal/testing/testcluster"
)

// pod creates a pod labelled app=APP; running makes it Running with its containers'
// statuses (the cluster has no kubelet).
func pod(t *testing.T, cs kubernetes.Interface, ns, name, app string, meshed, running bool) {
	t.Helper()
	ctx := context.Background()
	containers := []corev1.Container{{Name: "app", Image: "app:1"}}
	if meshed {
		containers = append(containers, corev1.Container{Name: ProxyContainer, Image: "proxy:1"})
	}
	p, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": app}},
		Spec:       corev1.PodSpec{NodeName: "node-1", Containers: containers},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !running {
		return
	}
	p.Status.Phase = corev1.PodRunning
	for _, c := range containers {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image,
			Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}})
	}
	if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// tapRole is docs/tap.md's Role: all a namespace user needs for mesh tap.
func tapRole(ns string) *rbacv1.Role {
	return &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "mesh-tap", Namespace: ns}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods", "services"}, Verbs: []string{"get", "list"}},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets", "daemonsets", "replicasets"}, Verbs: []string{"get"}},
		{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"get"}},
		{APIGroups: []string{""}, Resources: []string{"pods/portforward"}, Verbs: []string{"create"}},
	}}
}

func TestResolveAsANamespaceUser(t *testing.T) {
	admin := testcluster.Clientset(t)
	ns := testcluster.Namespace(t, admin)
	ctx := context.Background()
	pod(t, admin, ns, "web-b", "web", true, true)
	pod(t, admin, ns, "web-a", "web", true, true)
	pod(t, admin, ns, "web-pending", "web", true, false)
	pod(t, admin, ns, "web-plain", "web", false, true)
	pod(t, admin, ns, "api-1", "api", false, true)
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	tmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}}}
	zero := int32(0)
	if _, err := admin.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: &zero, Selector: sel, Template: tmpl}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "api"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "api"}, Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// A user with only the Role of docs/tap.md in this namespace.
	if _, err := admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "tapper"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RbacV1().Roles(ns).Create(ctx, tapRole(ns), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "mesh-tap"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "mesh-tap"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "tapper", Namespace: ns}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tok, err := admin.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "tapper", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.AnonymousClientConfig(testcluster.RESTConfig(t))
	cfg.BearerToken = tok.Status.Token
	user, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}

	// RBAC takes a moment to reach the authorizer's cache: wait for the Role to apply.
	allowed := func(resource, sub, verb string) bool {
		r, err := user.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: ns, Verb: verb, Resource: resource, Subresource: sub}}}, metav1.CreateOptions{})
		return err == nil && r.Status.Allowed
	}
	deadline := time.Now().Add(10 * time.Second)
	for !allowed("pods", "portforward", "create") {
		if time.Now().After(deadline) {
			t.Fatal("the Role never allowed pods/portforward create")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if allowed("pods", "proxy", "create") || allowed("pods", "exec", "create") {
		t.Error("the tap Role allows more than it needs")
	}

	for _, tc := range []struct{ resource, want, err string }{
		{"deploy/web", "web-a web-b", ""},
		{"svc/web", "web-a web-b", ""},
		{"pod/web-b", "web-b", ""},
		{"ns/" + ns, "web-a web-b", ""},
		{"pod/web-plain", "", "is not a running meshed pod"},
		{"pod/web-pending", "", "is not a running meshed pod"},
		{"svc/api", "", "has no running meshed pod (of 1 pods)"},
		{"deploy/nope", "", "deployment " + ns + "/nope: not found"},
		{"cm/x", "", `unknown kind "cm"`},
		{"web", "", "want KIND/NAME"},
	} {
		got, err := Resolve(ctx, user, ns, tc.resource)
		var names []string
		for _, p := range got {
			names = append(names, p.Name)
		}
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %v %v, want error %q", tc.resource, names, err, tc.err)
			}
			continue
		}
		if err != nil || strings.Join(names, " ") != tc.want {
			t.Errorf("%s: %v %v, want %s", tc.resource, names, err, tc.want)
		}
	}
	// The port-forward is authorized as the user: the API server lets it through and
	// then fails to reach the kubelet (this cluster has none); a user without the
	// Role is refused.
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_, err = PortForward{Config: cfg, Client: user}.DialTap(dctx, Pod{Namespace: ns, Name: "web-a"})
	if err == nil || !strings.Contains(err.Error(), "port-forward to "+ns+"/web-a") || strings.Contains(err.Error(), "forbidden") {
		t.Errorf("port-forward as the tap user: %v", err)
	}
	t.Logf("port-forward as the tap user: %v", err)
	vcfg := rest.AnonymousClientConfig(testcluster.RESTConfig(t))
	vcfg.BearerToken = testcluster.ViewerToken(t, admin, ns)
	viewer, err := kubernetes.NewForConfig(vcfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = PortForward{Config: vcfg, Client: viewer}.DialTap(dctx, Pod{Namespace: ns, Name: "web-a"})
	if err == nil || !strings.Contains(err.Error(), "forbidden") && !strings.Contains(err.Error(), "403") {
		t.Errorf("port-forward as a viewer: %v", err)
	}
	t.Logf("port-forward as a viewer: %v", err)
	// Another namespace is refused to this user.
	if _, err := Resolve(ctx, user, "default", "ns/default"); err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Errorf("other namespace: %v", err)
	}
}
