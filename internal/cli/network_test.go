package cli

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/docker/docker/api/types/network"
	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/internal/client/clienttest"
)

// recordJSON registers a handler that decodes the request body into dst
// and answers status with reply.
func recordJSON[T any](s *clienttest.Server, pattern string, dst *T, status int, reply any) {
	s.Handle(pattern, func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewDecoder(r.Body).Decode(dst)
		if reply == nil {
			w.WriteHeader(status)
			return
		}
		clienttest.WriteJSON(w, status, reply)
	})
}

func TestNetworkCreate(t *testing.T) {
	s := clienttest.New(t)
	var req network.CreateRequest
	id := "f00dbabe00112233445566778899aabbccddeeff00112233445566778899aabb"
	recordJSON(s, "POST /networks/create", &req, 201, network.CreateResponse{ID: id})
	got := runBerth(t, s.Host, "", "network", "create", "--driver", "bridge",
		"--subnet", "10.5.0.0/24", "--gateway", "10.5.0.1", "--ip-range", "10.5.0.128/25",
		"--internal", "--attachable", "-o", "com.docker.network.bridge.name=br-web", "--opt", "com.docker.network.driver.mtu=1400",
		"--label", "env=test", "--label", "team", "web")
	if diff := cmp.Diff(result{stdout: id + "\n"}, got, cmp.AllowUnexported(result{})); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	want := network.CreateRequest{
		Name: "web",
		CreateOptions: network.CreateOptions{
			Driver: "bridge",
			IPAM: &network.IPAM{
				Driver:  "default",
				Config:  []network.IPAMConfig{{Subnet: "10.5.0.0/24", IPRange: "10.5.0.128/25", Gateway: "10.5.0.1"}},
				Options: map[string]string{},
			},
			Internal:   true,
			Attachable: true,
			Options:    map[string]string{"com.docker.network.bridge.name": "br-web", "com.docker.network.driver.mtu": "1400"},
			Labels:     map[string]string{"env": "test", "team": ""},
		},
	}
	if diff := cmp.Diff(want, req); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
}

func TestNetworkCreateMinimal(t *testing.T) {
	s := clienttest.New(t)
	var req network.CreateRequest
	recordJSON(s, "POST /networks/create", &req, 201, network.CreateResponse{ID: "x"})
	if got := runBerth(t, s.Host, "", "network", "create", "plain"); got.code != 0 {
		t.Fatalf("exit %d: %s", got.code, got.stderr)
	}
	if req.Driver != "bridge" || req.EnableIPv4 != nil || req.EnableIPv6 != nil || len(req.IPAM.Config) != 0 {
		t.Errorf("unexpected request %+v ipam %+v", req, req.IPAM)
	}
}

func TestNetworkCreateConflict(t *testing.T) {
	s := clienttest.New(t)
	s.Handle("POST /networks/create", func(w http.ResponseWriter, _ *http.Request) {
		clienttest.Error(w, 409, "network with name web already exists")
	})
	got := runBerth(t, s.Host, "", "network", "create", "web")
	want := result{stderr: "Error response from daemon: network with name web already exists\n", code: 1}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(result{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestNetworkConnectDisconnect(t *testing.T) {
	s := clienttest.New(t)
	var conn network.ConnectOptions
	var disc network.DisconnectOptions
	recordJSON(s, "POST /networks/{id}/connect", &conn, 200, nil)
	recordJSON(s, "POST /networks/{id}/disconnect", &disc, 200, nil)
	if got := runBerth(t, s.Host, "", "network", "connect", "--ip", "10.5.0.7", "--alias", "db", "--alias", "pg", "web", "c1"); got.code != 0 || got.stdout != "" {
		t.Fatalf("connect: %+v", got)
	}
	wantConn := network.ConnectOptions{Container: "c1", EndpointConfig: &network.EndpointSettings{
		IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: "10.5.0.7"},
		Aliases:    []string{"db", "pg"},
		DriverOpts: map[string]string{},
	}}
	if diff := cmp.Diff(wantConn, conn); diff != "" {
		t.Errorf("connect (-want +got):\n%s", diff)
	}
	if got := runBerth(t, s.Host, "", "network", "disconnect", "-f", "web", "c1"); got.code != 0 {
		t.Fatalf("disconnect: %+v", got)
	}
	if diff := cmp.Diff(network.DisconnectOptions{Container: "c1", Force: true}, disc); diff != "" {
		t.Errorf("disconnect (-want +got):\n%s", diff)
	}
	wantCalls := []string{"POST /networks/web/connect", "POST /networks/web/disconnect"}
	if diff := cmp.Diff(wantCalls, s.Calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

func TestNetworkPrune(t *testing.T) {
	const warning = "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] "
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		want  result
		calls []string
	}{
		{
			name:  "refused at the prompt",
			args:  []string{"network", "prune"},
			stdin: "n\n",
			want:  result{stdout: warning},
		},
		{
			name:  "confirmed at the prompt",
			args:  []string{"network", "prune"},
			stdin: "y\n",
			want:  result{stdout: warning + "Deleted Networks:\nweb\nnet2\n\n"},
			calls: []string{"POST /networks/prune"},
		},
		{
			name:  "forced with a label filter",
			args:  []string{"network", "prune", "-f", "--filter", "label=env=test"},
			want:  result{stdout: "Deleted Networks:\nweb\nnet2\n\n"},
			calls: []string{"POST /networks/prune?filters=%7B%22label%22%3A%7B%22env%3Dtest%22%3Atrue%7D%7D"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := clienttest.New(t)
			s.JSON("POST /networks/prune", 200, network.PruneReport{NetworksDeleted: []string{"web", "net2"}})
			got := runBerth(t, s.Host, tc.stdin, tc.args...)
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(result{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.calls, s.Calls()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNetworkLsFilters(t *testing.T) {
	s := clienttest.New(t)
	s.JSON("GET /networks", 200, []network.Summary{})
	got := runBerth(t, s.Host, "", "network", "ls", "-f", "driver=bridge", "--filter", "name=web")
	if got.code != 0 {
		t.Fatalf("%+v", got)
	}
	want := []string{"GET /networks?filters=%7B%22driver%22%3A%7B%22bridge%22%3Atrue%7D%2C%22name%22%3A%7B%22web%22%3Atrue%7D%7D"}
	if diff := cmp.Diff(want, s.Calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	bad := runBerth(t, s.Host, "", "network", "ls", "-f", "driver")
	if bad.code != 125 || bad.stderr != "invalid argument \"driver\" for \"-f, --filter\" flag: bad format of filter (expected name=value)\n\nUsage:  berth network ls [OPTIONS]\n\nRun 'berth network ls --help' for more information\n" {
		t.Errorf("bad filter: %+v", bad)
	}
}
