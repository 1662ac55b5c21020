package api

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/network"
)

// withPublished gives test1 (exposing 80/tcp) published ports.
func withPublished() *fakeBackend {
	f := newFakeBackend()
	ep := f.endpoints[f.networks[0].ID][0]
	ep.Ports = []network.PortMapping{
		{Proto: "udp", HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 5353, Port: 53},
		{Proto: "tcp", HostIP: netip.MustParseAddr("0.0.0.0"), HostPort: 8080, Port: 80},
	}
	return f
}

func TestPublishedPortsInspect(t *testing.T) {
	rec := call(t, newServer(withPublished()), http.MethodGet, "/v1.51/containers/test1/json", "")
	wantStatus(t, rec, http.StatusOK)
	var got struct {
		NetworkSettings struct{ Ports json.RawMessage }
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := `{"53/udp":[{"HostIp":"127.0.0.1","HostPort":"5353"}],"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"8080"}]}`
	if diff := cmp.Diff(want, string(got.NetworkSettings.Ports)); diff != "" {
		t.Errorf("Ports (-want +got):\n%s", diff)
	}
}

func TestPublishedPortsSummary(t *testing.T) {
	f := withPublished()
	f.containers[0].Config.ExposedPorts = []string{"443/tcp", "80/tcp"}
	rec := call(t, newServer(f), http.MethodGet, "/v1.51/containers/json?filters="+urlEscape(`{"name":["test1"]}`), "")
	wantStatus(t, rec, http.StatusOK)
	got := decode[[]struct{ Ports []map[string]any }](t, rec)[0].Ports
	want := []map[string]any{
		{"IP": "127.0.0.1", "PrivatePort": 53.0, "PublicPort": 5353.0, "Type": "udp"},
		{"IP": "0.0.0.0", "PrivatePort": 80.0, "PublicPort": 8080.0, "Type": "tcp"},
		{"PrivatePort": 443.0, "Type": "tcp"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Ports (-want +got):\n%s", diff)
	}
}

func TestDockerCLIPorts(t *testing.T) {
	d := newDockerRunner(t, withPublished())
	d.ok("53/udp -> 127.0.0.1:5353\n80/tcp -> 0.0.0.0:8080\n", "port", "test1")
	d.ok("127.0.0.1:5353->53/udp, 0.0.0.0:8080->80/tcp\n", "ps", "--filter", "name=test1", "--format", "{{.Ports}}")
}

// TestStoppedContainerShowsNoPorts: as moby clears NetworkSettings.Ports
// when a container stops, inspect and ps show no ports, exposed or
// published, for a container that does not run.
func TestStoppedContainerShowsNoPorts(t *testing.T) {
	f := newFakeBackend()
	f.containers[0].Config.ExposedPorts = []string{"443/tcp", "80/tcp"}
	f.containers[0].State = container.State{Status: container.StatusExited}
	s := newServer(f)
	rec := call(t, s, http.MethodGet, "/v1.51/containers/test1/json", "")
	wantStatus(t, rec, http.StatusOK)
	var got struct {
		NetworkSettings struct{ Ports json.RawMessage }
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if string(got.NetworkSettings.Ports) != "{}" {
		t.Errorf("inspect Ports of a stopped container = %s, want {}", got.NetworkSettings.Ports)
	}
	rec = call(t, s, http.MethodGet, "/v1.51/containers/json?all=1&filters="+urlEscape(`{"name":["test1"]}`), "")
	wantStatus(t, rec, http.StatusOK)
	if ports := decode[[]struct{ Ports []map[string]any }](t, rec)[0].Ports; len(ports) != 0 {
		t.Errorf("ps Ports of a stopped container = %v, want none", ports)
	}
}

// TestPsPublishExposeFilters: docker ps --filter publish= matches a
// published host port, expose= a container port, as moby's; tcp when no
// protocol is given, ranges expanded.
func TestPsPublishExposeFilters(t *testing.T) {
	s := newServer(withPublished()) // test1: 0.0.0.0:8080->80/tcp, 127.0.0.1:5353->53/udp
	names := func(filter string) []string {
		t.Helper()
		rec := call(t, s, http.MethodGet, "/v1.51/containers/json?filters="+urlEscape(filter), "")
		wantStatus(t, rec, http.StatusOK)
		var out []string
		for _, c := range decode[[]struct{ Names []string }](t, rec) {
			out = append(out, c.Names[0])
		}
		return out
	}
	for _, tc := range []struct {
		filter string
		want   []string
	}{
		{`{"publish":["8080"]}`, []string{"/test1"}},
		{`{"publish":["8080/tcp"]}`, []string{"/test1"}},
		{`{"publish":["8000-8100"]}`, []string{"/test1"}},
		{`{"publish":["80"]}`, nil}, // a container port, not published
		{`{"publish":["5353"]}`, nil},
		{`{"publish":["5353/udp"]}`, []string{"/test1"}},
		{`{"expose":["80"]}`, []string{"/test1"}},
		{`{"expose":["53/udp"]}`, []string{"/test1"}},
		{`{"expose":["8080"]}`, nil},
	} {
		if got := names(tc.filter); !cmp.Equal(got, tc.want) {
			t.Errorf("ps %s = %v, want %v", tc.filter, got, tc.want)
		}
	}
	wantError(t, call(t, s, http.MethodGet, "/v1.51/containers/json?filters="+urlEscape(`{"publish":["0.0.0.0:8080"]}`), ""),
		http.StatusBadRequest, "filter for 'publish' should not contain ':': 0.0.0.0:8080")
	wantError(t, call(t, s, http.MethodGet, "/v1.51/containers/json?filters="+urlEscape(`{"expose":["http"]}`), ""),
		http.StatusBadRequest, "error while looking up for expose http: strconv.ParseUint: parsing \"http\": invalid syntax")
}

// TestHostNetworkPortsWarning: -p with --network host is accepted with
// moby's warning, which the docker CLI prints.
func TestHostNetworkPortsWarning(t *testing.T) {
	rec := call(t, newServer(newFakeBackend()), http.MethodPost, "/v1.51/containers/create",
		`{"Image":"busybox","HostConfig":{"NetworkMode":"host","PortBindings":{"80/tcp":[{"HostPort":"8080"}]}}}`)
	wantStatus(t, rec, http.StatusCreated)
	if got := decode[struct{ Warnings []string }](t, rec).Warnings; !cmp.Equal(got, []string{"Published ports are discarded when using host network mode"}) {
		t.Errorf("Warnings = %q", got)
	}
}
