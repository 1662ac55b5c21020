package cni

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func mustNetwork(t *testing.T, conf string) *Network {
	t.Helper()
	c, err := parseConf([]byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	n, err := c.network()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNetworkDefaultsAreTheBridgePluginsAndHostLocals(t *testing.T) {
	n := mustNetwork(t, `{"cniVersion":"1.0.0","name":"net","type":"berth-cni","ipam":{"type":"host-local","subnet":"10.22.0.0/16"}}`)
	want := &Network{
		Version: "1.0.0", Name: "net", Bridge: "cni0", DataDir: DefaultDataDir,
		RangeSets: [][]Range{{{
			Subnet: netip.MustParsePrefix("10.22.0.0/16"), Start: netip.MustParseAddr("10.22.0.1"),
			End: netip.MustParseAddr("10.22.255.254"), Gateway: netip.MustParseAddr("10.22.0.1"),
		}}},
	}
	if diff := cmp.Diff(want, n, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("network (-want +got):\n%s", diff)
	}
	n = mustNetwork(t, `{"cniVersion":"0.4.0","name":"net","type":"berth-cni","isDefaultGateway":true,
		"ipam":{"type":"host-local","ranges":[[{"subnet":"10.1.0.0/24","rangeStart":"10.1.0.10","rangeEnd":"10.1.0.20","gateway":"10.1.0.254"}],[{"subnet":"fd00:1::/64"}]],
		"routes":[{"dst":"192.0.2.0/24","gw":"10.1.0.254"}]}}`)
	if !n.IsGateway {
		t.Error("isDefaultGateway did not imply isGateway, as the bridge plugin makes it")
	}
	if r := n.RangeSets[0][0]; r.Start.String() != "10.1.0.10" || r.End.String() != "10.1.0.20" || r.Gateway.String() != "10.1.0.254" {
		t.Errorf("range = %+v", r)
	}
	if r := n.RangeSets[1][0]; r.End.String() != "fd00:1::ffff:ffff:ffff:ffff" || r.Gateway.String() != "fd00:1::1" {
		t.Errorf("IPv6 range = %+v (no broadcast to leave out)", r)
	}
}

func TestBadConfigurationsAreRefusedWithTheirCode(t *testing.T) {
	for _, tc := range []struct {
		name, conf string
		code       uint
		msg        string
	}{
		{"not json", `{`, CodeDecodeFailure, "decode"},
		{"unknown version", `{"cniVersion":"9.9.9","name":"n"}`, CodeIncompatibleVersion, "incompatible"},
		{"no name", `{"cniVersion":"1.0.0","ipam":{"type":"host-local","subnet":"10.0.0.0/24"}}`, CodeInvalidConfig, "no name"},
		{"other ipam", `{"cniVersion":"1.0.0","name":"n","ipam":{"type":"dhcp"}}`, CodeInvalidConfig, `"dhcp" is not supported`},
		{"vlan", `{"cniVersion":"1.0.0","name":"n","vlan":5,"ipam":{"type":"host-local","subnet":"10.0.0.0/24"}}`, CodeUnsupportedField, `"vlan"`},
		{"no hairpin", `{"cniVersion":"1.0.0","name":"n","hairpinMode":false,"ipam":{"type":"host-local","subnet":"10.0.0.0/24"}}`, CodeUnsupportedField, "hairpinMode"},
		{"vlan trunk", `{"cniVersion":"1.0.0","name":"n","vlanTrunk":[{"id":5}],"ipam":{"type":"host-local","subnet":"10.0.0.0/24"}}`, CodeUnsupportedField, `"vlanTrunk"`},
		{"mac spoof check", `{"cniVersion":"1.0.0","name":"n","macspoofchk":true,"ipam":{"type":"host-local","subnet":"10.0.0.0/24"}}`, CodeUnsupportedField, `"macspoofchk"`},
		{"dad", `{"cniVersion":"1.0.0","name":"n","enabledad":true,"ipam":{"type":"host-local","subnet":"10.0.0.0/24"}}`, CodeUnsupportedField, `"enabledad"`},
		{"no container interface", `{"cniVersion":"1.0.0","name":"n","disableContainerInterface":true,"ipam":{"type":"host-local","subnet":"10.0.0.0/24"}}`, CodeUnsupportedField, `"disableContainerInterface"`},
		{"port isolation", `{"cniVersion":"1.0.0","name":"n","portIsolation":true,"ipam":{"type":"host-local","subnet":"10.0.0.0/24"}}`, CodeUnsupportedField, `"portIsolation"`},
		{"promiscuous", `{"cniVersion":"1.0.0","name":"n","promiscMode":true,"ipam":{"type":"host-local","subnet":"10.0.0.0/24"}}`, CodeUnsupportedField, `"promiscMode"`},
		{"iptables masq", `{"cniVersion":"1.0.0","name":"n","ipMasqBackend":"iptables","ipam":{"type":"host-local","subnet":"10.0.0.0/24"}}`, CodeUnsupportedField, "ipMasqBackend"},
		{"no subnet", `{"cniVersion":"1.0.0","name":"n","ipam":{"type":"host-local"}}`, CodeInvalidConfig, "no subnet"},
		{"tiny subnet", `{"cniVersion":"1.0.0","name":"n","ipam":{"type":"host-local","subnet":"10.0.0.0/31"}}`, CodeInvalidConfig, "too small"},
		{"start outside", `{"cniVersion":"1.0.0","name":"n","ipam":{"type":"host-local","subnet":"10.0.0.0/24","rangeStart":"10.0.1.5"}}`, CodeInvalidConfig, "rangeStart"},
		{"end before start", `{"cniVersion":"1.0.0","name":"n","ipam":{"type":"host-local","subnet":"10.0.0.0/24","rangeStart":"10.0.0.50","rangeEnd":"10.0.0.10"}}`, CodeInvalidConfig, "before"},
		{"overlap", `{"cniVersion":"1.0.0","name":"n","ipam":{"type":"host-local","ranges":[[{"subnet":"10.0.0.0/24"}],[{"subnet":"10.0.0.0/25"}]]}}`, CodeInvalidConfig, "overlaps"},
		{"two v4 sets", `{"cniVersion":"1.0.0","name":"n","ipam":{"type":"host-local","ranges":[[{"subnet":"10.0.0.0/24"}],[{"subnet":"10.0.1.0/24"}]]}}`, CodeUnsupportedField, "one range set per address family"},
		{"mixed set", `{"cniVersion":"1.0.0","name":"n","ipam":{"type":"host-local","ranges":[[{"subnet":"10.0.0.0/24"},{"subnet":"fd00::/64"}]]}}`, CodeInvalidConfig, "mixes"},
		{"two subnets in a set", `{"cniVersion":"1.0.0","name":"n","ipam":{"type":"host-local","ranges":[[{"subnet":"10.0.0.0/24"},{"subnet":"10.0.1.0/24"}]]}}`, CodeUnsupportedField, "share one subnet"},
		{"bad name", `{"cniVersion":"1.0.0","name":"a/b","ipam":{"type":"host-local","subnet":"10.0.0.0/24"}}`, CodeInvalidConfig, "network name"},
		{"bad mtu", `{"cniVersion":"1.0.0","name":"n","mtu":20,"ipam":{"type":"host-local","subnet":"10.0.0.0/24"}}`, CodeInvalidConfig, "mtu"},
		{"long bridge", `{"cniVersion":"1.0.0","name":"n","bridge":"abcdefghijklmnopq","ipam":{"type":"host-local","subnet":"10.0.0.0/24"}}`, CodeInvalidConfig, "bridge"},
		// The bridge plugin's loadNetConf refuses it; echoed into ADD's
		// result, it failed the runtime's parse after everything was made.
		{"dns a string", `{"cniVersion":"1.0.0","name":"n","dns":"1.1.1.1","ipam":{"type":"host-local","subnet":"10.0.0.0/24"}}`, CodeDecodeFailure, "dns"},
		{"dns nameservers a string", `{"cniVersion":"1.0.0","name":"n","dns":{"nameservers":"1.1.1.1"},"ipam":{"type":"host-local","subnet":"10.0.0.0/24"}}`, CodeDecodeFailure, "dns"},
		{"relative resolvConf", `{"cniVersion":"1.0.0","name":"n","ipam":{"type":"host-local","subnet":"10.0.0.0/24","resolvConf":"resolv.conf"}}`, CodeInvalidConfig, "resolvConf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConf([]byte(tc.conf))
			if err == nil {
				_, err = c.network()
			}
			e, ok := err.(*Error)
			if !ok || e.Code != tc.code || !strings.Contains(e.Error(), tc.msg) {
				t.Fatalf("err = %#v, want code %d with %q", err, tc.code, tc.msg)
			}
		})
	}
}

func TestRequestReadsRuntimeConfigArgsAndCNIArgs(t *testing.T) {
	c, err := parseConf([]byte(`{"cniVersion":"1.0.0","name":"n","runtimeConfig":{
		"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"TCP"},{"hostPort":53,"containerPort":53,"protocol":"udp","hostIP":"127.0.0.1"}],
		"mac":"02:00:00:00:00:05","ips":["10.0.0.7/24","10.0.0.7"]}}`)) // the same address twice, as Podman's reload sends it
	if err != nil {
		t.Fatal(err)
	}
	q, err := c.request(Env{Args: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Ports) != 2 || q.Ports[0].Protocol != "tcp" || q.Ports[1].HostIP.String() != "127.0.0.1" {
		t.Errorf("ports = %+v", q.Ports)
	}
	if q.MAC.String() != "02:00:00:00:00:05" || len(q.IPs) != 1 || q.IPs[0].String() != "10.0.0.7" {
		t.Errorf("mac %s ips %v", q.MAC, q.IPs)
	}
	c, _ = parseConf([]byte(`{"cniVersion":"1.0.0","name":"n"}`))
	q, err = c.request(Env{Args: map[string]string{"IP": "10.0.0.9", "MAC": "02:00:00:00:00:09"}})
	if err != nil || q.IPs[0].String() != "10.0.0.9" || q.MAC.String() != "02:00:00:00:00:09" {
		t.Errorf("CNI_ARGS IP and MAC: %+v %v", q, err)
	}
	for _, bad := range []string{
		`{"cniVersion":"1.0.0","name":"n","runtimeConfig":{"portMappings":[{"hostPort":0,"containerPort":80}]}}`,
		`{"cniVersion":"1.0.0","name":"n","runtimeConfig":{"portMappings":[{"hostPort":80,"containerPort":80,"protocol":"sctp"}]}}`,
		`{"cniVersion":"1.0.0","name":"n","runtimeConfig":{"mac":"01:00:00:00:00:01"}}`,
		`{"cniVersion":"1.0.0","name":"n","runtimeConfig":{"ips":["nope"]}}`,
	} {
		c, _ := parseConf([]byte(bad))
		if _, err := c.request(Env{Args: map[string]string{}}); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestParseEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	e, err := ParseEnv(env(map[string]string{"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c", "CNI_NETNS": "/x", "CNI_IFNAME": "eth0", "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAME=p"}))
	if err != nil || e.Args["K8S_POD_NAME"] != "p" {
		t.Fatalf("%+v %v", e, err)
	}
	for _, m := range []map[string]string{
		{},
		{"CNI_COMMAND": "FROB"},
		{"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c", "CNI_IFNAME": "eth0"},
		{"CNI_COMMAND": "DEL", "CNI_CONTAINERID": "c", "CNI_IFNAME": "a/b"},
		{"CNI_COMMAND": "DEL", "CNI_CONTAINERID": "c", "CNI_IFNAME": "eth0", "CNI_ARGS": "nokey"},
		{"CNI_COMMAND": "CHECK", "CNI_CONTAINERID": "c", "CNI_IFNAME": "eth0"},
		{"CNI_COMMAND": "DEL", "CNI_CONTAINERID": "-c", "CNI_IFNAME": "eth0"},
		{"CNI_COMMAND": "DEL", "CNI_CONTAINERID": "c/d", "CNI_IFNAME": "eth0"},
	} {
		if _, err := ParseEnv(env(m)); err == nil || err.(*Error).Code != CodeInvalidEnv {
			t.Errorf("%v: err = %v, want code %d", m, err, CodeInvalidEnv)
		}
	}
	if _, err := ParseEnv(env(map[string]string{"CNI_COMMAND": "DEL", "CNI_CONTAINERID": "c", "CNI_IFNAME": "eth0"})); err != nil {
		t.Errorf("DEL without a namespace: %v", err)
	}
}

// TestDNSFromTheConfigurationOrResolvConf: a configuration's dns goes into
// ADD's result as the spec's DNS type; without one, host-local's
// resolvConf file makes it (it was ignored: the result's dns was empty).
func TestDNSFromTheConfigurationOrResolvConf(t *testing.T) {
	n := mustNetwork(t, `{"cniVersion":"1.0.0","name":"n","dns":{"nameservers":["10.0.0.53"],"search":["a.example"],"extra":1},"ipam":{"type":"host-local","subnet":"10.0.0.0/24"}}`)
	if b, _ := json.Marshal(n.DNS); string(b) != `{"nameservers":["10.0.0.53"],"search":["a.example"]}` {
		t.Errorf("dns = %s", b)
	}
	path := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(path, []byte("# made by hand\nnameserver 192.0.2.1\nnameserver 192.0.2.2\ndomain x.example\nsearch a.example b.example\noptions ndots:2 edns0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := readResolvConf(path)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(d); string(b) != `{"nameservers":["192.0.2.1","192.0.2.2"],"domain":"x.example","search":["a.example","b.example"],"options":["ndots:2","edns0"]}` {
		t.Errorf("from resolvConf: %s", b)
	}
	if _, err := readResolvConf(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("a missing resolvConf: no error")
	}
}
