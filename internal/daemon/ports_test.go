package daemon

import (
	"net/netip"
	"testing"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/network"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestPortRequests(t *testing.T) {
	local := netip.MustParseAddr("127.0.0.1")
	cfg := container.Config{
		ExposedPorts: []string{"443/tcp", "53/udp", "80/tcp", "9000/tcp"},
		PortBindings: map[string][]container.PortBinding{
			"80/tcp":   {{HostPort: "8080"}, {HostIP: local, HostPort: "8081"}},
			"53/udp":   {{HostPort: "5300-5310"}},
			"443/tcp":  {{}},
			"9000/tcp": nil, // a key without bindings is not published
		},
	}
	got, err := portRequests(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := []network.PortRequest{
		{Proto: "udp", Port: 53, HostPortStart: 5300, HostPortEnd: 5310},
		{Proto: "tcp", Port: 80, HostPortStart: 8080, HostPortEnd: 8080},
		{Proto: "tcp", Port: 80, HostIP: local, HostPortStart: 8081, HostPortEnd: 8081},
		{Proto: "tcp", Port: 443},
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("without -P (-want +got):\n%s", diff)
	}
	cfg.PublishAllPorts = true
	got, err = portRequests(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, network.PortRequest{Proto: "tcp", Port: 9000})
	if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("with -P (-want +got):\n%s", diff)
	}
	if got := portsForJoin(1, got); got != nil {
		t.Errorf("second network gets ports %v", got)
	}
}

func TestPortRequestsRejects(t *testing.T) {
	cases := map[string]map[string][]container.PortBinding{
		"sctp":           {"80/sctp": {{HostPort: "80"}}},
		"port 0":         {"0/tcp": {{HostPort: "80"}}},
		"not a port":     {"http/tcp": {{HostPort: "80"}}},
		"bad host port":  {"80/tcp": {{HostPort: "eighty"}}},
		"reversed range": {"80/tcp": {{HostPort: "9000-8000"}}},
		"too big":        {"80/tcp": {{HostPort: "70000"}}},
	}
	for name, pb := range cases {
		if err := checkPorts(container.Config{PortBindings: pb}); !errdefs.Is(err, errdefs.KindInvalid) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
}
