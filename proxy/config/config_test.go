package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) LookupEnv {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func base() map[string]string {
	return map[string]string{
		"MESH_PROXY_IDENTITY_LOCAL_NAME":    "web.default.serviceaccount.identity.cluster.local",
		"MESH_PROXY_IDENTITY_TRUST_ANCHORS": "-----BEGIN CERTIFICATE-----",
		"MESH_PROXY_IDENTITY_SVC_ADDR":      "mesh-identity.mesh.svc.cluster.local.:8080",
		"MESH_PROXY_IDENTITY_SVC_NAME":      "mesh-identity.mesh.serviceaccount.identity.cluster.local",
		"MESH_PROXY_IDENTITY_TOKEN_FILE":    "/var/run/secrets/tokens/mesh-identity-token",
	}
}

func TestDefaults(t *testing.T) {
	c, err := FromEnv(env(base()))
	if err != nil {
		t.Fatal(err)
	}
	if c.InboundAddr != "0.0.0.0:4143" || c.OutboundAddr != "127.0.0.1:4140" || c.DetectTimeout != 10*time.Second ||
		c.OutboundConnectTimeout != time.Second || c.InboundConnectTimeout != 100*time.Millisecond || c.ShutdownGrace != 120*time.Second {
		t.Errorf("defaults: %+v", c)
	}
	for _, p := range []uint16{25, 3306, 5432, 11211} {
		if !c.OpaquePorts[p] {
			t.Errorf("default opaque port %d missing", p)
		}
	}
	if fmt.Sprint(c.ProfileNetworks) != "[10.0.0.0/8 100.64.0.0/10 172.16.0.0/12 192.168.0.0/16]" {
		t.Errorf("default profile networks %v", c.ProfileNetworks)
	}
	if c.TapAddr != "127.0.0.1:4192" || c.TapMaxEventsPerSecond != 100 || len(c.TapRedactHeaders) != 0 {
		t.Errorf("tap defaults: %q %v %v", c.TapAddr, c.TapMaxEventsPerSecond, c.TapRedactHeaders)
	}
}

func TestTapValues(t *testing.T) {
	m := base()
	m["MESH_PROXY_TAP_LISTEN_ADDR"] = "[::1]:5000"
	m["MESH_PROXY_TAP_REDACT_HEADERS"] = " X-Api-Key, ,x-session "
	m["MESH_PROXY_TAP_MAX_EVENTS_PER_SECOND"] = "2.5"
	c, err := FromEnv(env(m))
	if err != nil {
		t.Fatal(err)
	}
	if c.TapAddr != "[::1]:5000" || fmt.Sprint(c.TapRedactHeaders) != "[X-Api-Key x-session]" || c.TapMaxEventsPerSecond != 2.5 {
		t.Errorf("tap: %q %v %v", c.TapAddr, c.TapRedactHeaders, c.TapMaxEventsPerSecond)
	}
}

func TestValues(t *testing.T) {
	m := base()
	m["MESH_PROXY_OPAQUE_PORTS"] = "4000-4002,9000"
	m["MESH_PROXY_INBOUND_PORTS"] = "8080,9090"
	m["MESH_PROXY_DETECT_TIMEOUT"] = "250ms"
	c, err := FromEnv(env(m))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.OpaquePorts) != 4 || !c.OpaquePorts[4001] || c.OpaquePorts[3306] || len(c.InboundPorts) != 2 || c.DetectTimeout != 250*time.Millisecond {
		t.Errorf("got %+v", c)
	}
	// Set and empty: no opaque ports at all.
	m["MESH_PROXY_OPAQUE_PORTS"] = ""
	if c, err = FromEnv(env(m)); err != nil || len(c.OpaquePorts) != 0 {
		t.Errorf("empty opaque ports: %v %v", c.OpaquePorts, err)
	}
	m["MESH_PROXY_DESTINATION_PROFILE_NETWORKS"] = "10.96.0.0/12, 10.244.1.7/16"
	if c, err = FromEnv(env(m)); err != nil || fmt.Sprint(c.ProfileNetworks) != "[10.96.0.0/12 10.244.0.0/16]" {
		t.Errorf("profile networks: %v %v", c.ProfileNetworks, err)
	}
	m["MESH_PROXY_DESTINATION_PROFILE_NETWORKS"] = ""
	if c, err = FromEnv(env(m)); err != nil || len(c.ProfileNetworks) != 0 {
		t.Errorf("no profile networks: %v %v", c.ProfileNetworks, err)
	}
	if len(c.HTTP2Ports) != 0 {
		t.Errorf("HTTP/2 ports by default: %v", c.HTTP2Ports)
	}
	m["MESH_PROXY_HTTP2_PORTS"] = "8080,50051-50052"
	if c, err = FromEnv(env(m)); err != nil || len(c.HTTP2Ports) != 3 || !c.HTTP2Ports[50052] {
		t.Errorf("HTTP/2 ports: %v %v", c.HTTP2Ports, err)
	}
}

func TestErrorsNameTheVariable(t *testing.T) {
	for name, tc := range map[string]struct {
		set  map[string]string
		drop string
		want string
	}{
		"bad duration":       {set: map[string]string{"MESH_PROXY_DETECT_TIMEOUT": "ten"}, want: `MESH_PROXY_DETECT_TIMEOUT="ten"`},
		"bad port":           {set: map[string]string{"MESH_PROXY_OPAQUE_PORTS": "3306,http"}, want: `MESH_PROXY_OPAQUE_PORTS: "http" is not a port`},
		"bad network":        {set: map[string]string{"MESH_PROXY_DESTINATION_PROFILE_NETWORKS": "10.0.0.0"}, want: `MESH_PROXY_DESTINATION_PROFILE_NETWORKS: "10.0.0.0" is not a CIDR`},
		"bad range":          {set: map[string]string{"MESH_PROXY_INBOUND_PORTS": "90-80"}, want: "MESH_PROXY_INBOUND_PORTS"},
		"bad addr":           {set: map[string]string{"MESH_PROXY_ADMIN_LISTEN_ADDR": "localhost"}, want: `MESH_PROXY_ADMIN_LISTEN_ADDR="localhost"`},
		"no identity":        {drop: "MESH_PROXY_IDENTITY_LOCAL_NAME", want: "MESH_PROXY_IDENTITY_LOCAL_NAME"},
		"no anchors":         {drop: "MESH_PROXY_IDENTITY_TRUST_ANCHORS", want: "MESH_PROXY_IDENTITY_TRUST_ANCHORS"},
		"half dst":           {set: map[string]string{"MESH_PROXY_DESTINATION_SVC_ADDR": "x:1"}, want: "go together"},
		"h2 opaque":          {set: map[string]string{"MESH_PROXY_HTTP2_PORTS": "3306"}, want: "MESH_PROXY_HTTP2_PORTS: port 3306 is also opaque"},
		"tap on pod network": {set: map[string]string{"MESH_PROXY_TAP_LISTEN_ADDR": "0.0.0.0:4192"}, want: `MESH_PROXY_TAP_LISTEN_ADDR="0.0.0.0:4192": the tap API listens on a loopback address only`},
		"tap on pod ip":      {set: map[string]string{"MESH_PROXY_TAP_LISTEN_ADDR": "10.1.2.3:4192"}, want: "loopback address only"},
		"tap on any v6":      {set: map[string]string{"MESH_PROXY_TAP_LISTEN_ADDR": "[::]:4192"}, want: "loopback address only"},
		"tap bad addr":       {set: map[string]string{"MESH_PROXY_TAP_LISTEN_ADDR": "localhost:4192"}, want: `MESH_PROXY_TAP_LISTEN_ADDR="localhost:4192": not an ip:port`},
		"tap bad rate":       {set: map[string]string{"MESH_PROXY_TAP_MAX_EVENTS_PER_SECOND": "0"}, want: "MESH_PROXY_TAP_MAX_EVENTS_PER_SECOND"},
		"tap rate NaN":       {set: map[string]string{"MESH_PROXY_TAP_MAX_EVENTS_PER_SECOND": "NaN"}, want: "MESH_PROXY_TAP_MAX_EVENTS_PER_SECOND"},
	} {
		m := base()
		for k, v := range tc.set {
			m[k] = v
		}
		delete(m, tc.drop)
		_, err := FromEnv(env(m))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", name, err, tc.want)
		}
	}
}
