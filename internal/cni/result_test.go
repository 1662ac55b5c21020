package cni

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
)

func TestResultEncodesEachVersionsForm(t *testing.T) {
	r := &Result{
		Interfaces: []Interface{{Name: "cni0", MAC: "02:00:00:00:00:01"}, {Name: "veth1", MAC: "02:00:00:00:00:02"}, {Name: "eth0", MAC: "02:00:00:00:00:03", Sandbox: "/run/netns/x"}},
		IPs:        []IPConfig{{Address: netip.MustParsePrefix("10.0.0.2/24"), Gateway: netip.MustParseAddr("10.0.0.1"), Interface: 2}},
		Routes:     []Route{{Dst: netip.MustParsePrefix("0.0.0.0/0"), GW: netip.MustParseAddr("10.0.0.1")}},
	}
	for v, wantVersion := range map[string]bool{"0.3.1": true, "0.4.0": true, "1.0.0": false, "1.1.0": false} {
		b, err := r.encode(v)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		ip := got["ips"].([]any)[0].(map[string]any)
		if _, has := ip["version"]; has != wantVersion {
			t.Errorf("%s: ips[0] has version: %v, want %v", v, has, wantVersion)
		}
		if got["cniVersion"] != v || ip["interface"] != 2.0 || ip["address"] != "10.0.0.2/24" {
			t.Errorf("%s: %s", v, b)
		}
		if !strings.Contains(string(b), `"sandbox": "/run/netns/x"`) {
			t.Errorf("%s: container interface without its sandbox: %s", v, b)
		}
	}
}

func TestResultRoutesAddADefaultRouteForIsDefaultGateway(t *testing.T) {
	n := mustNetwork(t, `{"cniVersion":"1.0.0","name":"n","isDefaultGateway":true,"ipam":{"type":"host-local","subnet":"10.0.0.0/24","routes":[{"dst":"192.0.2.0/24"}]}}`)
	ips := []AttachedIP{{Address: netip.MustParsePrefix("10.0.0.2/24"), Gateway: netip.MustParseAddr("10.0.0.1")}}
	routes := resultRoutes(n, ips)
	if len(routes) != 2 || routes[1].Dst.String() != "0.0.0.0/0" || routes[1].GW.String() != "10.0.0.1" {
		t.Errorf("routes = %v", routes)
	}
}

func TestVersionAnswer(t *testing.T) {
	var v struct {
		CNIVersion        string   `json:"cniVersion"`
		SupportedVersions []string `json:"supportedVersions"`
	}
	if err := json.Unmarshal(versionAnswer(), &v); err != nil || v.CNIVersion != LatestVersion || len(v.SupportedVersions) != len(SupportedVersions) {
		t.Errorf("%+v %v", v, err)
	}
}
