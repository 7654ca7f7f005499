package tap

import (
	"net/url"
	"strings"
	"testing"
)

func TestQueryRoundTrip(t *testing.T) {
	t.Parallel()
	m := Match{Method: "POST", Authority: "a", PathPrefix: "/p", Direction: Inbound, Destination: "svc/api"}
	got, rps, err := ParseQuery(m.Query(2.5))
	if err != nil || got != m || rps != 2.5 {
		t.Fatalf("%+v %v %v", got, rps, err)
	}
	for _, q := range []string{"max-rps=-1", "max-rps=x", "to=widget/x", "direction=up"} {
		v, _ := url.ParseQuery(q)
		if _, _, err := ParseQuery(v); err == nil || !strings.Contains(err.Error(), strings.SplitN(q, "=", 2)[0]) {
			t.Errorf("%s: err %v", q, err)
		}
	}
}

func TestMatchDestination(t *testing.T) {
	t.Parallel()
	e := &Event{Authority: "default.svc.cluster.local:8080", Dst: map[string]string{"service": "api", "workloadKind": "deployment", "workloadName": "api-v1"}}
	for dest, want := range map[string]bool{
		"svc/api": true, "svc/web": false, "deploy/api-v1": true, "sts/api-v1": false,
		"default.svc.cluster.local": true, "default.svc.cluster.local:8080": true, "default.svc.cluster.local:80": false,
	} {
		if got := (Match{Destination: dest}).Matches(e); got != want {
			t.Errorf("%s: %v, want %v", dest, got, want)
		}
	}
}

func TestMatchFields(t *testing.T) {
	t.Parallel()
	e := &Event{Direction: Inbound, Method: "GET", Authority: "web:8080", Path: "/api/items?x=1"}
	for _, tc := range []struct {
		m    Match
		want bool
	}{
		{Match{}, true},
		{Match{Method: "get"}, true},
		{Match{Method: "POST"}, false},
		{Match{Authority: "web"}, true},
		{Match{Authority: "web:8080"}, true},
		{Match{Authority: "web:80"}, false},
		{Match{PathPrefix: "/api/items?x"}, true},
		{Match{PathPrefix: "/other"}, false},
		{Match{Direction: Outbound}, false},
		{Match{Method: "GET", Direction: Inbound, PathPrefix: "/api", Authority: "web"}, true},
		{Match{Method: "GET", Direction: Outbound}, false},
	} {
		if got := tc.m.Matches(e); got != tc.want {
			t.Errorf("%+v: %v, want %v", tc.m, got, tc.want)
		}
	}
}
