package cni

import (
	"encoding/json"
	"fmt"
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

// TestResult020: a 0.1.0 or 0.2.0 configuration (one without cniVersion
// is 0.1.0) gets the old form, as the reference plugins give it: ip4 and
// ip6, each with its family's routes, and no interfaces.
func TestResult020(t *testing.T) {
	r := &Result{
		Interfaces: []Interface{{Name: "cni0"}, {Name: "veth1"}, {Name: "eth0", Sandbox: "/run/netns/x"}},
		IPs: []IPConfig{
			{Address: netip.MustParsePrefix("10.0.0.2/24"), Gateway: netip.MustParseAddr("10.0.0.1"), Interface: 2},
			{Address: netip.MustParsePrefix("fd00::2/64"), Gateway: netip.MustParseAddr("fd00::1"), Interface: 2},
		},
		Routes: []Route{
			{Dst: netip.MustParsePrefix("0.0.0.0/0"), GW: netip.MustParseAddr("10.0.0.1")},
			{Dst: netip.MustParsePrefix("::/0"), GW: netip.MustParseAddr("fd00::1")},
		},
	}
	b, err := r.encode("0.2.0")
	if err != nil {
		t.Fatal(err)
	}
	var got, want any
	json.Unmarshal(b, &got)
	json.Unmarshal([]byte(`{"cniVersion":"0.2.0",
		"ip4":{"ip":"10.0.0.2/24","gateway":"10.0.0.1","routes":[{"dst":"0.0.0.0/0","gw":"10.0.0.1"}]},
		"ip6":{"ip":"fd00::2/64","gateway":"fd00::1","routes":[{"dst":"::/0","gw":"fd00::1"}]},
		"dns":{}}`), &want)
	if g, w := fmt.Sprint(got), fmt.Sprint(want); g != w {
		t.Errorf("0.2.0 result:\n%s\nwant %s", b, w)
	}
	n := mustNetwork(t, `{"name":"n","ipam":{"type":"host-local","subnet":"10.0.0.0/24"}}`)
	if n.Version != "0.1.0" {
		t.Errorf("a configuration without cniVersion is %q, want 0.1.0", n.Version)
	}
}
