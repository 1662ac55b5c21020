package api

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	ctypes "github.com/docker/docker/api/types/container"
	imagetypes "github.com/docker/docker/api/types/image"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/network"
	"github.com/berth-net/berth/internal/runtime/image"
)

var cmpAddr = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

func TestContainerCreate(t *testing.T) {
	tests := []struct {
		name, path, body string
		want             container.Config
		warnings         []any
	}{{
		name: "docker run -d on the default network",
		path: "/v1.51/containers/create?name=new1",
		body: `{"Image":"busybox","Cmd":["sleep","1000"],"ExposedPorts":{"80/tcp":{}},"Labels":{},
			"HostConfig":{"NetworkMode":"default","AutoRemove":true,"Dns":["1.1.1.1"],"DnsSearch":["example"],
			"DnsOptions":["ndots:1"],"ExtraHosts":["db:10.0.0.5","gw:host-gateway"],"RestartPolicy":{"Name":"no"},
			"PortBindings":{}},"NetworkingConfig":{"EndpointsConfig":{}}}`,
		want: container.Config{
			Image: "busybox", Cmd: []string{"sleep", "1000"}, ExposedPorts: []string{"80/tcp"}, Labels: map[string]string{},
			NetworkMode: "bridge", AutoRemove: true, DNS: []string{"1.1.1.1"}, DNSSearch: []string{"example"},
			DNSOptions: []string{"ndots:1"}, ExtraHosts: []string{"db:10.0.0.5", "gw:host-gateway"},
			Networks: map[string]container.EndpointRequest{"bridge": {}},
		},
	}, {
		name: "user network with --ip, --alias and per-endpoint MAC (API >= 1.44)",
		path: "/v1.51/containers/create?name=/web1",
		body: `{"Image":"busybox","Entrypoint":"sh","Cmd":"-c true","Tty":true,"OpenStdin":true,"Env":["A=1"],
			"HostConfig":{"NetworkMode":"web"},
			"NetworkingConfig":{"EndpointsConfig":{"web":{"IPAMConfig":{"IPv4Address":"10.5.0.10"},"Aliases":["www"],"MacAddress":"02:42:0a:05:00:0a"}}}}`,
		want: container.Config{
			Image: "busybox", Entrypoint: []string{"sh"}, Cmd: []string{"-c true"}, Tty: true, OpenStdin: true, Env: []string{"A=1"},
			NetworkMode: "web",
			Networks: map[string]container.EndpointRequest{"web": {
				IPv4Address: netip.MustParseAddr("10.5.0.10"), Aliases: []string{"www"}, MacAddress: "02:42:0a:05:00:0a",
			}},
		},
	}, {
		name: "legacy links on the default bridge (docker run --link)",
		path: "/v1.51/containers/create",
		body: `{"Image":"busybox","HostConfig":{"NetworkMode":"bridge","Links":["db:database","cache","/old:/web1/legacy"]}}`,
		want: container.Config{
			Image: "busybox", NetworkMode: "bridge", Networks: map[string]container.EndpointRequest{"bridge": {}},
			Links: []container.Link{{Name: "db", Alias: "database"}, {Name: "cache", Alias: "cache"}, {Name: "old", Alias: "legacy"}},
		},
	}, {
		name: "links on a user network are the endpoint's aliases, not legacy links",
		path: "/v1.51/containers/create",
		body: `{"Image":"busybox","HostConfig":{"NetworkMode":"web","Links":["db:database"]},
			"NetworkingConfig":{"EndpointsConfig":{"web":{"Links":["db:database"]}}}}`,
		want: container.Config{
			Image: "busybox", NetworkMode: "web",
			Networks: map[string]container.EndpointRequest{"web": {Links: []string{"db:database"}}},
		},
	}, {
		name: "Compose's logging block: json-file with max-size and max-file",
		path: "/v1.51/containers/create",
		body: `{"Image":"busybox","HostConfig":{"LogConfig":{"Type":"json-file","Config":{"max-size":"10m","max-file":"3"}}}}`,
		want: container.Config{
			Image: "busybox", NetworkMode: "bridge", Networks: map[string]container.EndpointRequest{"bridge": {}},
			LogConfig: container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m", "max-file": "3"}},
		},
	}, {
		name: "container-wide MAC before API 1.44 goes to the mode's network",
		path: "/v1.43/containers/create",
		body: `{"Image":"busybox","MacAddress":"02:00:00:00:00:09","HostConfig":{"NetworkMode":"web"},
			"NetworkingConfig":{"EndpointsConfig":{"web":{"MacAddress":"02:00:00:00:00:01"}}}}`,
		want: container.Config{
			Image: "busybox", NetworkMode: "web",
			Networks: map[string]container.EndpointRequest{"web": {MacAddress: "02:00:00:00:00:09"}},
		},
	}, {
		name: "published ports (-p 127.0.0.1:8080:80, -p 8000-8002:81/udp, -p 443, -P)",
		path: "/v1.51/containers/create",
		body: `{"Image":"busybox","ExposedPorts":{"80/tcp":{},"81/udp":{},"443/tcp":{}},
			"HostConfig":{"PublishAllPorts":true,"PortBindings":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"8080"}],
			"81/udp":[{"HostIp":"","HostPort":"8000-8002"}],"443/tcp":[{"HostIp":"","HostPort":""}],"9/tcp":[]}}}`,
		want: container.Config{
			Image: "busybox", ExposedPorts: []string{"443/tcp", "80/tcp", "81/udp"}, NetworkMode: "bridge",
			Networks: map[string]container.EndpointRequest{"bridge": {}}, PublishAllPorts: true,
			PortBindings: map[string][]container.PortBinding{
				"80/tcp":  {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "8080"}},
				"81/udp":  {{HostPort: "8000-8002"}},
				"443/tcp": {{}},
			},
		},
	}, {
		name: "endpoint keyed default becomes bridge",
		path: "/v1.51/containers/create",
		body: `{"Image":"busybox","NetworkingConfig":{"EndpointsConfig":{"default":{"Aliases":["x"]}}}}`,
		want: container.Config{
			Image: "busybox", NetworkMode: "bridge",
			Networks: map[string]container.EndpointRequest{"bridge": {Aliases: []string{"x"}}},
		},
	}, {
		name: "restart policy",
		path: "/v1.51/containers/create",
		body: `{"Image":"busybox","HostConfig":{"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":3}}}`,
		want: container.Config{
			Image: "busybox", NetworkMode: "bridge", Networks: map[string]container.EndpointRequest{"bridge": {}},
			RestartPolicy: container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 3},
		},
	}, {
		name: "another container's network namespace, with an empty endpoint as docker sends it",
		path: "/v1.51/containers/create",
		body: `{"Image":"busybox","HostConfig":{"NetworkMode":"container:db"},
			"NetworkingConfig":{"EndpointsConfig":{"container:db":{}}}}`,
		want: container.Config{Image: "busybox", NetworkMode: "container:db"},
	}, {
		name: "limits as the docker CLI sends them (-m 64m --cpus 1.5 --pids-limit 100 --ulimit nofile=10:20 --shm-size 1m --oom-score-adj 5)",
		path: "/v1.51/containers/create",
		body: `{"Image":"busybox","HostConfig":{"Memory":67108864,"NanoCpus":1500000000,"PidsLimit":100,"MemorySwappiness":-1,
			"OomKillDisable":false,"Ulimits":[{"Name":"nofile","Hard":20,"Soft":10}],"ShmSize":1048576,"OomScoreAdj":5}}`,
		want: container.Config{
			Image: "busybox", NetworkMode: "bridge", Networks: map[string]container.EndpointRequest{"bridge": {}},
			Resources: container.Resources{Memory: 64 << 20, NanoCPUs: 1.5e9, PidsLimit: new(int64(100)),
				Ulimits: []container.Ulimit{{Name: "nofile", Soft: 10, Hard: 20}}, ShmSize: 1 << 20, OomScoreAdj: 5},
		},
	}, {
		name: "dropped as moby drops them: KernelMemory (API 1.42 and later), CpuPercent",
		path: "/v1.51/containers/create",
		body: `{"Image":"busybox","HostConfig":{"KernelMemory":10485760,"CpuPercent":50}}`,
		want: container.Config{
			Image: "busybox", NetworkMode: "bridge", Networks: map[string]container.EndpointRequest{"bridge": {}},
		},
		warnings: []any{"linux does not support CPU percent. Percent discarded."},
	}, {
		name: "the docker CLI's unset limits are unset (PidsLimit 0, swappiness -1, no ulimits)",
		path: "/v1.51/containers/create",
		body: `{"Image":"busybox","HostConfig":{"Memory":0,"PidsLimit":0,"MemorySwappiness":-1,"OomKillDisable":false,"Ulimits":[],"ShmSize":0}}`,
		want: container.Config{
			Image: "busybox", NetworkMode: "bridge", Networks: map[string]container.EndpointRequest{"bridge": {}},
		},
	}, {
		name: "AutoRemove is the client's job before 1.25",
		path: "/v1.24/containers/create",
		body: `{"Image":"busybox","HostConfig":{"AutoRemove":true,"NetworkMode":"none"}}`,
		want: container.Config{
			Image: "busybox", NetworkMode: "none", Networks: map[string]container.EndpointRequest{"none": {}},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeBackend()
			rec := call(t, newServer(f), http.MethodPost, tt.path, tt.body)
			wantStatus(t, rec, http.StatusCreated)
			warnings := tt.warnings
			if warnings == nil {
				warnings = []any{}
			}
			if diff := cmp.Diff(map[string]any{"Id": hexID("c0ffee"), "Warnings": warnings}, decode[map[string]any](t, rec)); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, f.recorded().ContainerCreate, cmpAddr); diff != "" {
				t.Errorf("Config (-want +got):\n%s", diff)
			}
		})
	}
}

func TestContainerCreateNameConflict(t *testing.T) {
	rec := call(t, newServer(newFakeBackend()), http.MethodPost, "/containers/create?name=test1", `{"Image":"busybox"}`)
	wantError(t, rec, http.StatusConflict, `Conflict. The container name "/test1" is already in use by container "`+hexID("4fea95f2e979")+`". You have to remove (or rename) that container to be able to reuse that name.`)
}

// TestContainerCreatePlatform: docker run --platform of another
// architecture than the image's (the host's) is refused with moby's words,
// not ignored; the image's own platform, in any of its spellings, passes.
func TestContainerCreatePlatform(t *testing.T) {
	other := "riscv64"
	if goarch() == other {
		other = "s390x"
	}
	for _, p := range []string{"linux/" + goarch(), goarch(), "linux"} {
		rec := call(t, newServer(newFakeBackend()), http.MethodPost, "/v1.51/containers/create?name=p1&platform="+p, `{"Image":"busybox"}`)
		wantStatus(t, rec, http.StatusCreated)
	}
	if goarch() == "amd64" {
		rec := call(t, newServer(newFakeBackend()), http.MethodPost, "/v1.51/containers/create?name=p1&platform=linux/x86_64", `{"Image":"busybox"}`)
		wantStatus(t, rec, http.StatusCreated)
	}
	rec := call(t, newServer(newFakeBackend()), http.MethodPost, "/v1.51/containers/create?name=p1&platform=linux/"+other, `{"Image":"busybox"}`)
	wantError(t, rec, http.StatusNotFound, "image with reference busybox was found but its platform (linux/"+goarch()+") does not match the specified platform (linux/"+other+")")
	rec = call(t, newServer(newFakeBackend()), http.MethodPost, "/v1.51/containers/create?name=p1&platform=linux//", `{"Image":"busybox"}`)
	wantStatus(t, rec, http.StatusBadRequest)
	// The docker CLI pulls after that 404: the pull says why too.
	rec = call(t, newServer(newFakeBackend()), http.MethodPost, "/v1.51/images/create?fromImage=busybox&tag=latest&platform=linux/"+other, "")
	wantStatus(t, rec, http.StatusNotFound)
	if !strings.Contains(rec.Body.String(), "does not match the specified platform (linux/"+other+"); berth runs images on the host's platform") {
		t.Errorf("pull of another platform answered %s", rec.Body)
	}
	// Before API 1.41 the parameter did not exist, and is ignored.
	rec = call(t, newServer(newFakeBackend()), http.MethodPost, "/v1.40/containers/create?name=p1&platform=linux/"+other, `{"Image":"busybox"}`)
	wantStatus(t, rec, http.StatusCreated)
}

func TestContainerInspectGolden(t *testing.T) {
	rec := call(t, newServer(newFakeBackend()), http.MethodGet, "/v1.51/containers/test1/json", "")
	wantStatus(t, rec, http.StatusOK)
	golden(t, "container-inspect-test1.json", indentJSON(t, rec.Body.Bytes()))
}

// TestLegacyNetworkSettings pins Docker's rule: the deprecated top-level
// NetworkSettings fields come only from the network named "bridge", and
// only for API < 1.52.
func TestLegacyNetworkSettings(t *testing.T) {
	type legacy struct {
		IPAddress, Gateway, MacAddress, EndpointID string
		IPPrefixLen                                int
	}
	inspect := func(t *testing.T, version, ref string) map[string]json.RawMessage {
		t.Helper()
		f := newFakeBackend()
		c, _ := f.Container(context.Background(), ref)
		b, err := json.Marshal(containerInspect(c, f.attachments[c.ID], LinkNames{}, nil, version, nil))
		if err != nil {
			t.Fatal(err)
		}
		var v struct{ NetworkSettings map[string]json.RawMessage }
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		return v.NetworkSettings
	}
	t.Run("bridge at 1.51", func(t *testing.T) {
		ns := inspect(t, "1.51", "test1")
		b, _ := json.Marshal(ns)
		var got legacy
		_ = json.Unmarshal(b, &got)
		want := legacy{IPAddress: "172.17.0.2", Gateway: "172.17.0.1", MacAddress: "02:42:ac:11:00:02", EndpointID: hexID("e1"), IPPrefixLen: 16}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("legacy fields (-want +got):\n%s", diff)
		}
	})
	t.Run("user network at 1.51", func(t *testing.T) {
		ns := inspect(t, "1.51", "test2")
		for _, k := range []string{"IPAddress", "Gateway", "MacAddress", "EndpointID"} {
			if string(ns[k]) != `""` {
				t.Errorf("%s = %s, want \"\"", k, ns[k])
			}
		}
		if string(ns["IPPrefixLen"]) != "0" {
			t.Errorf("IPPrefixLen = %s, want 0", ns["IPPrefixLen"])
		}
		if !strings.Contains(string(ns["Networks"]), `"IPAddress":"10.5.0.10"`) {
			t.Errorf("Networks lacks the user network's address: %s", ns["Networks"])
		}
	})
	t.Run("bridge at 1.52", func(t *testing.T) {
		ns := inspect(t, "1.52", "test1")
		var keys []string
		for k := range ns {
			keys = append(keys, k)
		}
		if diff := cmp.Diff([]string{"Networks", "Ports", "SandboxID", "SandboxKey"}, keys, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
			t.Errorf("NetworkSettings keys (-want +got):\n%s", diff)
		}
	})
}

func TestContainerInspectUserNetwork(t *testing.T) {
	rec := call(t, newServer(newFakeBackend()), http.MethodGet, "/v1.51/containers/test2/json", "")
	wantStatus(t, rec, http.StatusOK)
	var got struct {
		Name            string
		State           struct{ Pid int }
		NetworkSettings struct {
			SandboxKey string
			Networks   map[string]map[string]any
		}
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Name != "/test2" || got.State.Pid != 4242 || got.NetworkSettings.SandboxKey != "/run/berth/netns/99aa" {
		t.Errorf("Name, Pid, SandboxKey = %q, %d, %q", got.Name, got.State.Pid, got.NetworkSettings.SandboxKey)
	}
	web := got.NetworkSettings.Networks["web"]
	want := map[string]any{
		"IPAMConfig": map[string]any{"IPv4Address": "10.5.0.10"}, "Aliases": []any{"db"},
		"DNSNames": []any{"test2", "db", "8975cb01d142"}, "IPAddress": "10.5.0.10", "IPPrefixLen": 24.0,
		"Gateway": "10.5.0.1", "NetworkID": hexID("aa11"), "EndpointID": hexID("e2"), "MacAddress": "02:42:0a:05:00:0a",
	}
	for k, v := range want {
		if diff := cmp.Diff(v, web[k]); diff != "" {
			t.Errorf("Networks.web.%s (-want +got):\n%s", k, diff)
		}
	}
}

// TestContainerInspectForOlderClients: moby's getContainersByName and
// getInspectData for clients of older APIs: below 1.45 a user-defined
// network's aliases add the short ID and the hostname (once each);
// Config.MacAddress is the MAC asked for on the network mode's network,
// at every version.
func TestContainerInspectForOlderClients(t *testing.T) {
	f := newFakeBackend()
	req := f.containers[1].Config.Networks["web"]
	req.MacAddress = "02:42:0a:05:00:99"
	f.containers[1].Config.Networks["web"] = req
	f.containers[1].Config.Hostname = "dbhost"
	for _, tc := range []struct {
		version string
		aliases []any
	}{
		{"1.44", []any{"db", "8975cb01d142", "dbhost"}},
		{"1.45", []any{"db"}},
	} {
		rec := call(t, newServer(f), http.MethodGet, "/v"+tc.version+"/containers/test2/json", "")
		wantStatus(t, rec, http.StatusOK)
		var got struct {
			Config          struct{ MacAddress string }
			NetworkSettings struct{ Networks map[string]map[string]any }
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.aliases, got.NetworkSettings.Networks["web"]["Aliases"]); diff != "" {
			t.Errorf("%s: Aliases (-want +got):\n%s", tc.version, diff)
		}
		if got.Config.MacAddress != "02:42:0a:05:00:99" {
			t.Errorf("%s: Config.MacAddress %q", tc.version, got.Config.MacAddress)
		}
	}
	// The default bridge's aliases are never added to.
	rec := call(t, newServer(f), http.MethodGet, "/v1.43/containers/test1/json", "")
	if strings.Contains(rec.Body.String(), `"Aliases":[`) {
		t.Errorf("bridge endpoint got aliases: %s", rec.Body.String())
	}
}

func TestContainerLifecycle(t *testing.T) {
	f := newFakeBackend()
	f.containers[0].State.Status = container.StatusCreated
	s := newServer(f)
	wantStatus(t, call(t, s, http.MethodPost, "/v1.51/containers/test1/start", ""), http.StatusNoContent)
	f.containers[0].State.Status = container.StatusRunning
	rec := call(t, s, http.MethodPost, "/v1.51/containers/test1/start", "")
	wantStatus(t, rec, http.StatusNotModified)
	if rec.Body.Len() != 0 {
		t.Errorf("304 with a body: %q", rec.Body.String())
	}
	wantStatus(t, call(t, s, http.MethodPost, "/v1.51/containers/test1/stop?t=3&signal=SIGINT", ""), http.StatusNoContent)
	three := 3
	if diff := cmp.Diff(stopCall{Ref: "test1", Timeout: &three, Signal: "SIGINT"}, f.recorded().Stop); diff != "" {
		t.Errorf("stop (-want +got):\n%s", diff)
	}
	wantStatus(t, call(t, s, http.MethodPost, "/v1.41/containers/test1/stop", ""), http.StatusNoContent)
	if diff := cmp.Diff(stopCall{Ref: "test1"}, f.recorded().Stop); diff != "" {
		t.Errorf("stop without t (-want +got):\n%s", diff)
	}
	wantStatus(t, call(t, s, http.MethodPost, "/v1.51/containers/test1/kill?signal=KILL", ""), http.StatusNoContent)
	wantError(t, call(t, s, http.MethodPost, "/v1.51/containers/nope/kill", ""), http.StatusNotFound,
		"cannot kill container: nope: No such container: nope")
	wantStatus(t, call(t, s, http.MethodPost, "/v1.51/containers/test1/restart", ""), http.StatusNoContent)
	wantStatus(t, call(t, s, http.MethodPost, "/v1.51/containers/test1/resize?h=40&w=120", ""), http.StatusOK)
	wantStatus(t, call(t, s, http.MethodPost, "/v1.51/containers/test1/rename?name=web2", ""), http.StatusNoContent)
	wantError(t, call(t, s, http.MethodPost, "/v1.51/containers/nope/rename?name=x", ""), http.StatusNotFound, "No such container: nope")
	wantError(t, call(t, s, http.MethodDelete, "/v1.51/containers/test1", ""), http.StatusConflict,
		`cannot remove container "test1": container is running: stop the container before removing or force remove`)
	wantStatus(t, call(t, s, http.MethodDelete, "/v1.51/containers/test1?force=1&v=1&link=0", ""), http.StatusNoContent)
	wantError(t, call(t, s, http.MethodDelete, "/v1.51/containers/nope", ""), http.StatusNotFound, "No such container: nope")
	want := []string{
		"StartContainer test1", "StopContainer test1", "StopContainer test1", "KillContainer test1 KILL",
		"StopContainer test1", "RenameContainer test1 web2", "RemoveContainer test1 true",
	}
	if diff := cmp.Diff(want, f.Mutations()); diff != "" {
		t.Errorf("mutations (-want +got):\n%s", diff)
	}
}

// TestWaitHeadersBeforeExit: docker run blocks on the wait's headers
// before it starts the container, so they must arrive while the body is
// still pending.
func TestWaitHeadersBeforeExit(t *testing.T) {
	f := newFakeBackend()
	exit := make(chan WaitResult)
	var gotCond string
	f.wait = func(_ context.Context, _, cond string) (<-chan WaitResult, error) {
		gotCond = cond
		return exit, nil
	}
	srv := httptest.NewServer(newServer(f).Handler())
	t.Cleanup(srv.Close)
	resp, err := http.Post(srv.URL+"/v1.51/containers/test1/wait?condition=next-exit", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// Getting here at all means the headers came before the exit.
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if gotCond != "next-exit" {
		t.Errorf("condition = %q, want next-exit", gotCond)
	}
	exit <- WaitResult{StatusCode: 7, Err: "boom"}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil && err != io.EOF {
		t.Fatal(err)
	}
	if diff := cmp.Diff(`{"StatusCode":7,"Error":{"Message":"boom"}}`+"\n", line); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
}

func TestWaitDefaultBody(t *testing.T) {
	rec := call(t, newServer(newFakeBackend()), http.MethodPost, "/containers/test1/wait", "")
	wantStatus(t, rec, http.StatusOK)
	if diff := cmp.Diff(`{"StatusCode":0,"Error":null}`+"\n", rec.Body.String()); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
	wantError(t, call(t, newServer(newFakeBackend()), http.MethodPost, "/containers/nope/wait", ""), http.StatusNotFound, "No such container: nope")
}

func TestContainerLogs(t *testing.T) {
	f := newFakeBackend()
	var gotOpts LogsOptions
	f.logs = func(_ context.Context, _ string, o LogsOptions, stdout, stderr io.Writer) error {
		gotOpts = o
		_, _ = io.WriteString(stdout, "hello\n")
		_, _ = io.WriteString(stderr, "oops\n")
		return nil
	}
	rec := call(t, newServer(f), http.MethodGet, "/v1.51/containers/test1/logs?stdout=1&stderr=1&tail=5", "")
	wantStatus(t, rec, http.StatusOK)
	if ct := rec.Header().Get("Content-Type"); ct != mediaMultiplexedStream {
		t.Errorf("Content-Type = %q", ct)
	}
	want := "\x01\x00\x00\x00\x00\x00\x00\x06hello\n\x02\x00\x00\x00\x00\x00\x00\x05oops\n"
	if diff := cmp.Diff(want, rec.Body.String()); diff != "" {
		t.Errorf("frames (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(LogsOptions{Stdout: true, Stderr: true, Tail: 5}, gotOpts); diff != "" {
		t.Errorf("options (-want +got):\n%s", diff)
	}

	f.containers[0].Config.Tty = true
	rec = call(t, newServer(f), http.MethodGet, "/v1.51/containers/test1/logs?stdout=1&follow=1", "")
	if ct := rec.Header().Get("Content-Type"); ct != mediaRawStream {
		t.Errorf("tty Content-Type = %q", ct)
	}
	if diff := cmp.Diff("hello\n", rec.Body.String()); diff != "" {
		t.Errorf("tty body (-want +got):\n%s", diff)
	}
	if !gotOpts.Follow || gotOpts.Tail != -1 {
		t.Errorf("options = %+v, want follow and all lines", gotOpts)
	}

	// What the docker CLI sends for -t, --since and --until (seconds
	// with nanoseconds, or without), and until=0 for no bound.
	for _, c := range []struct {
		query string
		want  LogsOptions
	}{
		{"timestamps=1&since=1700000000.000000001&until=1700000060", LogsOptions{Stdout: true, Tail: -1, Timestamps: true, Since: time.Unix(1700000000, 1), Until: time.Unix(1700000060, 0)}},
		{"since=1700000000.5&until=0", LogsOptions{Stdout: true, Tail: -1, Since: time.Unix(1700000000, 500_000_000)}},
	} {
		rec = call(t, newServer(f), http.MethodGet, "/v1.51/containers/test1/logs?stdout=1&"+c.query, "")
		wantStatus(t, rec, http.StatusOK)
		if !gotOpts.Since.Equal(c.want.Since) || !gotOpts.Until.Equal(c.want.Until) || gotOpts.Timestamps != c.want.Timestamps {
			t.Errorf("%s: options %+v, want %+v", c.query, gotOpts, c.want)
		}
	}
}

// TestShutdownEndsWait: a pending wait must not hold the daemon's shutdown.
func TestShutdownEndsWait(t *testing.T) {
	f := newFakeBackend()
	f.wait = func(context.Context, string, string) (<-chan WaitResult, error) {
		return make(chan WaitResult), nil // never exits
	}
	s := newServer(f)
	sock := serveUnix(t, s)
	resp, err := unixClient(sock).Post("http://api/v1.51/containers/test1/wait", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	_, _ = io.ReadAll(resp.Body)
}

// TestWaitWithoutResult: a wait channel closed without a result must not
// look like exit code 0 to the client.
func TestWaitWithoutResult(t *testing.T) {
	f := newFakeBackend()
	f.wait = func(context.Context, string, string) (<-chan WaitResult, error) {
		ch := make(chan WaitResult)
		close(ch)
		return ch, nil
	}
	rec := call(t, newServer(f), http.MethodPost, "/v1.51/containers/test1/wait", "")
	wantStatus(t, rec, http.StatusOK)
	if rec.Body.Len() != 0 {
		t.Errorf("body = %q, want none", rec.Body.String())
	}
}

func TestCommandLine(t *testing.T) {
	for _, tt := range []struct {
		path string
		args []string
		want string
	}{
		{"sleep", []string{"1000"}, "sleep 1000"},
		{"sh", []string{"-c", "echo bye; exit 4"}, "sh -c 'echo bye; exit 4'"},
		{"true", nil, "true"},
	} {
		if got := commandLine(tt.path, tt.args); got != tt.want {
			t.Errorf("commandLine(%q, %q) = %q, want %q", tt.path, tt.args, got, tt.want)
		}
	}
}

// TestUnimplementedRoutes: Docker routes berth does not serve say which
// docker command is missing (501), not a bare "page not found".
func TestUnimplementedRoutes(t *testing.T) {
	s := newServer(newFakeBackend())
	for _, tc := range []struct{ method, path, want string }{
		{http.MethodPost, "/v1.51/images/busybox/push", "docker push is not supported by berth"},
	} {
		rec := call(t, s, tc.method, tc.path, "")
		if tc.method == http.MethodHead {
			wantStatus(t, rec, http.StatusNotImplemented)
			continue
		}
		wantError(t, rec, http.StatusNotImplemented, tc.want)
	}
	// Unknown paths keep moby's answer.
	wantError(t, call(t, s, http.MethodGet, "/v1.51/no/such/path", ""), http.StatusNotFound, "page not found")
}

// TestContainerLinksShown: inspect shows a container's legacy links in
// HostConfig.Links and ps its names as a child, as moby does.
func TestContainerLinksShown(t *testing.T) {
	f := newFakeBackend()
	f.links = map[string]LinkNames{hexID("8975cb01d142"): {Links: []string{"/db:/test2/database"}, Names: []string{"/web/test2"}}}
	srv := newServer(f)
	rec := call(t, srv, http.MethodGet, "/v1.51/containers/test2/json", "")
	wantStatus(t, rec, http.StatusOK)
	var got struct{ HostConfig struct{ Links []string } }
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"/db:/test2/database"}, got.HostConfig.Links); diff != "" {
		t.Errorf("HostConfig.Links (-want +got):\n%s", diff)
	}
	rec = call(t, srv, http.MethodGet, "/v1.51/containers/json?all=1", "")
	wantStatus(t, rec, http.StatusOK)
	var list []struct {
		ID    string `json:"Id"`
		Names []string
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil {
		t.Fatal(err)
	}
	for _, c := range list {
		if c.ID == hexID("8975cb01d142") {
			if diff := cmp.Diff([]string{"/test2", "/web/test2"}, c.Names); diff != "" {
				t.Errorf("Names (-want +got):\n%s", diff)
			}
			return
		}
	}
	t.Errorf("test2 not listed: %s", rec.Body)
}

// TestRemoveLink: docker rm --link removes a link, never the container;
// without link=1 a link's name names its child (TestLinkNameRoutes), and
// here there is no such link.
func TestRemoveLink(t *testing.T) {
	tests := []struct {
		path   string
		status int
		want   []string
	}{
		{"/v1.51/containers/web/db?link=1", http.StatusNoContent, []string{"RemoveLink web/db"}},
		{"/v1.51/containers/db?link=1", http.StatusNoContent, []string{"RemoveLink db"}},
		{"/v1.51/containers/web/db", http.StatusNotFound, nil},
	}
	for _, tt := range tests {
		f := newFakeBackend()
		rec := call(t, newServer(f), http.MethodDelete, tt.path, "")
		if rec.Code != tt.status {
			t.Errorf("DELETE %s: status %d, want %d: %s", tt.path, rec.Code, tt.status, rec.Body)
		}
		if diff := cmp.Diff(tt.want, f.Mutations()); diff != "" {
			t.Errorf("DELETE %s: mutations (-want +got):\n%s", tt.path, diff)
		}
	}
}

// TestLinkNameRoutes: a legacy link's name ("web/test2") names the child
// on every container route, its "/" unescaped as the docker CLI sends it,
// as moby's {name:.*} routes take it.
func TestLinkNameRoutes(t *testing.T) {
	tests := []struct {
		method, path string
		status       int
		want         []string
	}{
		{http.MethodPost, "/v1.51/containers/web/test2/stop", http.StatusNoContent, []string{"StopContainer web/test2"}},
		{http.MethodGet, "/v1.51/containers/web/test2/json", http.StatusOK, nil},
		{http.MethodDelete, "/v1.51/containers/web/test2?force=1", http.StatusNoContent, []string{"RemoveContainer web/test2 true"}},
		{http.MethodDelete, "/v1.51/containers/web/test2?link=1", http.StatusNoContent, []string{"RemoveLink web/test2"}},
		{http.MethodGet, "/containers/web/test2/json", http.StatusOK, nil},
		{http.MethodGet, "/v1.51/containers/a/b/c/json", http.StatusNotFound, nil},
		{http.MethodGet, "/v1.51/containers/web/test2/nosuchaction", http.StatusNotFound, nil},
	}
	for _, tt := range tests {
		f := newFakeBackend()
		f.linkNames = map[string]string{"web/test2": "test2"}
		rec := call(t, newServer(f), tt.method, tt.path, "")
		if rec.Code != tt.status {
			t.Errorf("%s %s: status %d, want %d: %s", tt.method, tt.path, rec.Code, tt.status, rec.Body)
		}
		if diff := cmp.Diff(tt.want, f.Mutations()); diff != "" {
			t.Errorf("%s %s: mutations (-want +got):\n%s", tt.method, tt.path, diff)
		}
	}
	rec := call(t, newServer(newFakeBackend()), http.MethodGet, "/v1.51/containers/a/b/c/json", "")
	wantError(t, rec, http.StatusNotFound, "No such container: a/b/c")
}

// TestLogsOfNoneDriver: docker logs of a container whose log driver is
// none is refused before the stream starts, with moby's words and 501.
func TestLogsOfNoneDriver(t *testing.T) {
	f := newFakeBackend()
	for _, c := range f.containers {
		if c.Name == "test1" {
			c.Config.LogConfig = container.LogConfig{Type: container.LogDriverNone}
		}
	}
	rec := call(t, newServer(f), http.MethodGet, "/v1.51/containers/test1/logs?stdout=1", "")
	wantError(t, rec, http.StatusNotImplemented, "configured logging driver does not support reading")
	rec = call(t, newServer(f), http.MethodGet, "/v1.51/containers/test1/json", "")
	wantStatus(t, rec, http.StatusOK)
	if !strings.Contains(rec.Body.String(), `"LogConfig":{"Type":"none","Config":{}}`) {
		t.Errorf("inspect's LogConfig: %s", rec.Body)
	}
}

// TestPruneContainers: docker container prune takes the stopped containers
// that moby's filters (label, label!, until) let through.
func TestPruneContainers(t *testing.T) {
	until := fakeTime.Add(30 * time.Second).Format(time.RFC3339)
	tests := []struct {
		filters string
		status  int
		want    []string
	}{
		{"", http.StatusOK, []string{"PruneContainers test1", "PruneContainers test2"}},
		{`{"label":{"role=db":true}}`, http.StatusOK, []string{"PruneContainers test2"}},
		{`{"label!":{"role":true}}`, http.StatusOK, []string{"PruneContainers test1"}},
		{`{"until":{"` + until + `":true}}`, http.StatusOK, []string{"PruneContainers test1"}},
		{`{"until":{"1h":true,"2h":true}}`, http.StatusBadRequest, nil},
		{`{"status":{"exited":true}}`, http.StatusBadRequest, nil},
	}
	for _, tt := range tests {
		f := newFakeBackend()
		for _, c := range f.containers {
			c.State.Status = container.StatusExited
		}
		rec := checkPrune(t, f, "/v1.51/containers/prune", tt.filters, tt.status, tt.want)
		if want := fmt.Sprintf(`"SpaceReclaimed":%d`, 100*len(tt.want)); tt.status == http.StatusOK && !strings.Contains(rec.Body.String(), want) {
			t.Errorf("%s: report %s, want %s", tt.filters, rec.Body, want)
		}
	}
	// A running container is never pruned.
	f := newFakeBackend()
	rec := call(t, newServer(f), http.MethodPost, "/v1.51/containers/prune", "")
	wantStatus(t, rec, http.StatusOK)
	if m := f.Mutations(); len(m) != 0 {
		t.Errorf("running containers pruned: %v", m)
	}
	if !strings.Contains(rec.Body.String(), `"SpaceReclaimed":0`) {
		t.Errorf("report: %s", rec.Body)
	}
}

// TestVolumesListEmpty: a daemon without volumes says so the way Docker's
// does (Compose's down -p lists them first).
func TestVolumesListEmpty(t *testing.T) {
	s := newServer(newFakeBackend())
	rec := call(t, s, http.MethodGet, "/v1.51/volumes?filters="+url.QueryEscape(`{"label":{"com.docker.compose.project=p":true}}`), "")
	wantStatus(t, rec, http.StatusOK)
	if got := strings.TrimSpace(rec.Body.String()); got != `{"Volumes":[],"Warnings":null}` {
		t.Errorf("volume list: %s", got)
	}
	rec = call(t, s, http.MethodGet, "/v1.51/volumes?filters="+url.QueryEscape(`{"size":{"1":true}}`), "")
	wantStatus(t, rec, http.StatusBadRequest)
	rec = call(t, s, http.MethodPost, "/v1.51/volumes/prune", "")
	wantStatus(t, rec, http.StatusOK)
	if got := strings.TrimSpace(rec.Body.String()); got != `{"VolumesDeleted":null,"SpaceReclaimed":0}` {
		t.Errorf("volume prune: %s", got)
	}
}

// TestPruneImages: docker image prune's filters as moby reads them.
func TestPruneImages(t *testing.T) {
	for _, tt := range []struct {
		filters string
		status  int
		want    []string
	}{
		{"", http.StatusOK, []string{"PruneImages all=false"}},
		{`{"dangling":{"false":true}}`, http.StatusOK, []string{"PruneImages all=true"}},
		{`{"dangling":{"1":true}}`, http.StatusOK, []string{"PruneImages all=false"}},
		{`{"dangling":{"maybe":true}}`, http.StatusBadRequest, nil},
		{`{"dangling":{"true":true,"false":true}}`, http.StatusBadRequest, nil},
		{`{"reference":{"x":true}}`, http.StatusBadRequest, nil},
	} {
		checkPrune(t, newFakeBackend(), "/v1.51/images/prune", tt.filters, tt.status, tt.want)
	}
	rec := call(t, newServer(newFakeBackend()), http.MethodPost, "/v1.51/build/prune", "")
	wantStatus(t, rec, http.StatusOK)

	// label and label! match the labels of the image's config.
	f := newFakeBackend()
	keep := &image.Image{ID: "sha256:" + hexID("b1"), Config: &image.Config{Labels: map[string]string{"keep": "yes"}}}
	f.images = append(f.images, keep)
	for filter, want := range map[string][]string{
		`{"label":{"keep":true}}`:      {keep.ID},
		`{"label":{"keep=no":true}}`:   nil,
		`{"label!":{"keep":true}}`:     {f.images[0].ID},
		`{"label!":{"keep=yes":true}}`: {f.images[0].ID},
	} {
		rec := call(t, newServer(f), http.MethodPost, "/v1.51/images/prune?filters="+url.QueryEscape(filter), "")
		wantStatus(t, rec, http.StatusOK)
		var got []string
		for _, d := range decode[imagetypes.PruneReport](t, rec).ImagesDeleted {
			got = append(got, d.Deleted)
		}
		if !cmp.Equal(got, want) {
			t.Errorf("image prune %s deleted %v, want %v", filter, got, want)
		}
	}
}

// TestListFiltersMobyAccepts: ps's before, since, health, is-task and
// volume filters, as moby's list.go applies them to berth's containers
// (no health checks, no tasks, no volumes).
func TestListFiltersMobyAccepts(t *testing.T) {
	s := newServer(newFakeBackend())
	for _, tt := range []struct {
		filters string
		status  int
		want    []string
	}{
		{`{"before":{"test2":true}}`, http.StatusOK, []string{"/test1"}},
		{`{"since":{"test1":true}}`, http.StatusOK, []string{"/test2"}},
		{`{"before":{"test1":true}}`, http.StatusOK, nil},
		{`{"before":{"nosuch":true}}`, http.StatusNotFound, nil},
		{`{"health":{"none":true}}`, http.StatusOK, []string{"/test2", "/test1"}},
		{`{"health":{"healthy":true}}`, http.StatusOK, nil},
		{`{"health":{"fine":true}}`, http.StatusBadRequest, nil},
		{`{"is-task":{"false":true}}`, http.StatusOK, []string{"/test2", "/test1"}},
		{`{"is-task":{"true":true}}`, http.StatusOK, nil},
		{`{"is-task":{"maybe":true}}`, http.StatusBadRequest, nil},
		{`{"volume":{"data":true}}`, http.StatusOK, nil},
		{`{"isolation":{"default":true}}`, http.StatusOK, []string{"/test2", "/test1"}},
	} {
		rec := call(t, s, http.MethodGet, "/v1.51/containers/json?filters="+url.QueryEscape(tt.filters), "")
		if rec.Code != tt.status {
			t.Errorf("%s: status %d, want %d: %s", tt.filters, rec.Code, tt.status, rec.Body)
			continue
		}
		if rec.Code != http.StatusOK {
			continue
		}
		var got []string
		for _, c := range decode[[]ctypes.Summary](t, rec) {
			got = append(got, c.Names[0])
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: names (-want +got):\n%s", tt.filters, diff)
		}
	}
}

// checkPrune posts a prune with filters (JSON, "" for none) and checks
// the status and what the backend was asked to do.
func checkPrune(t *testing.T, f *fakeBackend, path, filters string, status int, want []string) *httptest.ResponseRecorder {
	t.Helper()
	if filters != "" {
		path += "?filters=" + url.QueryEscape(filters)
	}
	rec := call(t, newServer(f), http.MethodPost, path, "")
	if rec.Code != status {
		t.Errorf("%s: status %d, want %d: %s", filters, rec.Code, status, rec.Body)
	}
	if diff := cmp.Diff(want, f.Mutations()); diff != "" {
		t.Errorf("%s: (-want +got):\n%s", filters, diff)
	}
	return rec
}

// TestTopContainer: docker top's route passes ps_args and answers moby's
// TopResponse.
func TestTopContainer(t *testing.T) {
	s := newServer(newFakeBackend())
	rec := call(t, s, http.MethodGet, "/v1.51/containers/test1/top?ps_args=aux", "")
	wantStatus(t, rec, http.StatusOK)
	if got, want := strings.TrimSpace(rec.Body.String()), `{"Processes":[["1","sleep aux"]],"Titles":["PID","CMD"]}`; got != want {
		t.Errorf("body %s, want %s", got, want)
	}
	wantError(t, call(t, s, http.MethodGet, "/v1.51/containers/nope/top", ""), http.StatusNotFound, "No such container: nope")
}

// TestContainerStats: docker stats's route answers moby's StatsResponse, a
// JSON object a frame, streaming by default; stream=0 answers one;
// stream with one-shot is refused.
func TestContainerStats(t *testing.T) {
	s := newServer(newFakeBackend())
	rec := call(t, s, http.MethodGet, "/v1.51/containers/test1/stats?stream=0", "")
	wantStatus(t, rec, http.StatusOK)
	frames := strings.Split(strings.TrimSpace(rec.Body.String()), "\n")
	if len(frames) != 1 {
		t.Fatalf("stream=0: %d frames, want 1:\n%s", len(frames), rec.Body.String())
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(frames[0]), &got); err != nil {
		t.Fatal(err)
	}
	cpu := got["cpu_stats"].(map[string]any)
	mem := got["memory_stats"].(map[string]any)
	nets := got["networks"].(map[string]any)
	if got["name"] != "/test1" || got["read"] != "2026-01-02T03:04:05Z" || cpu["cpu_usage"].(map[string]any)["total_usage"] != 2000.0 ||
		cpu["system_cpu_usage"] != 100000.0 || cpu["online_cpus"] != 2.0 || mem["usage"] != 4096.0 || mem["limit"] != float64(1<<20) ||
		mem["stats"].(map[string]any)["inactive_file"] != 1024.0 || got["pids_stats"].(map[string]any)["current"] != 3.0 ||
		nets["eth0"].(map[string]any)["tx_bytes"] != 20.0 ||
		got["blkio_stats"].(map[string]any)["io_service_bytes_recursive"].([]any)[0].(map[string]any)["op"] != "read" {
		t.Errorf("frame: %s", frames[0])
	}
	rec = call(t, s, http.MethodGet, "/v1.51/containers/test1/stats", "")
	wantStatus(t, rec, http.StatusOK)
	if n := strings.Count(strings.TrimSpace(rec.Body.String()), "\n") + 1; n != 2 {
		t.Errorf("streamed: %d frames, want 2", n)
	}
	wantError(t, call(t, s, http.MethodGet, "/v1.51/containers/test1/stats?stream=1&one-shot=1", ""), http.StatusBadRequest, "cannot have stream=true and one-shot=true")
	wantError(t, call(t, s, http.MethodGet, "/v1.51/containers/nope/stats?stream=0", ""), http.StatusNotFound, "No such container: nope")
}

// TestUpdateContainer: docker update sets the restart policy, validated
// as at create, and the limits, and refuses by name the resource
// settings berth does not apply.
func TestUpdateContainer(t *testing.T) {
	f := newFakeBackend()
	s := newServer(f)
	rec := call(t, s, http.MethodPost, "/v1.51/containers/test1/update", `{"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":3}}`)
	wantStatus(t, rec, http.StatusOK)
	if got := strings.TrimSpace(rec.Body.String()); got != `{"Warnings":null}` {
		t.Errorf("body %s", got)
	}
	if diff := cmp.Diff([]string{"UpdateContainer test1 on-failure:3"}, f.Mutations()); diff != "" {
		t.Errorf("mutations (-want +got):\n%s", diff)
	}
	// The limits go to the backend as berth's; PidsLimit -1 is "unlimited".
	rec = call(t, s, http.MethodPost, "/v1.51/containers/test1/update", `{"Memory":104857600,"NanoCpus":500000000,"PidsLimit":-1,"CpusetCpus":"0"}`)
	wantStatus(t, rec, http.StatusOK)
	want := container.Resources{Memory: 104857600, NanoCPUs: 5e8, PidsLimit: new(int64), CpusetCpus: "0"}
	if diff := cmp.Diff(want, f.rec.ContainerUpdate.Resources); diff != "" {
		t.Errorf("update's resources (-want +got):\n%s", diff)
	}
	wantError(t, call(t, s, http.MethodPost, "/v1.51/containers/test1/update", `{"BlkioDeviceReadBps":[{"Path":"/dev/sda","Rate":1}]}`), http.StatusBadRequest,
		"--device-read-bps (HostConfig.BlkioDeviceReadBps) is not supported by berth")
	// What moby's update leaves is left (a client may send back the whole
	// Resources it read); what it drops is dropped with its warning.
	rec = call(t, s, http.MethodPost, "/v1.51/containers/test1/update", `{"Ulimits":[{"Name":"nofile","Soft":1,"Hard":1}],"MemorySwappiness":50,"OomKillDisable":true,"CpuPercent":50}`)
	wantStatus(t, rec, http.StatusOK)
	if got := strings.TrimSpace(rec.Body.String()); got != `{"Warnings":["linux does not support CPU percent. Percent discarded."]}` {
		t.Errorf("update body %s", got)
	}
	if diff := cmp.Diff(container.Resources{}, f.rec.ContainerUpdate.Resources); diff != "" {
		t.Errorf("update's resources (-want +got):\n%s", diff)
	}
	wantError(t, call(t, s, http.MethodPost, "/v1.51/containers/test1/update", `{"RestartPolicy":{"Name":"always","MaximumRetryCount":2}}`),
		http.StatusBadRequest, "invalid restart policy: maximum retry count can only be used with 'on-failure'")
	wantError(t, call(t, s, http.MethodPost, "/v1.51/containers/nope/update", `{"RestartPolicy":{"Name":"always"}}`), http.StatusNotFound, "No such container: nope")
}

// TestPauseRoutes: docker pause and unpause answer 204.
func TestPauseRoutes(t *testing.T) {
	f := newFakeBackend()
	s := newServer(f)
	wantStatus(t, call(t, s, http.MethodPost, "/v1.51/containers/test1/pause", ""), http.StatusNoContent)
	wantStatus(t, call(t, s, http.MethodPost, "/v1.51/containers/test1/unpause", ""), http.StatusNoContent)
	if diff := cmp.Diff([]string{"PauseContainer test1", "UnpauseContainer test1"}, f.Mutations()); diff != "" {
		t.Errorf("mutations (-want +got):\n%s", diff)
	}
	wantError(t, call(t, s, http.MethodPost, "/v1.51/containers/nope/pause", ""), http.StatusNotFound, "No such container: nope")
}

// TestContainerSizes: ps and inspect with size=1 carry SizeRw and
// SizeRootFs; without it, neither.
func TestContainerSizes(t *testing.T) {
	s := newServer(newFakeBackend())
	rec := call(t, s, http.MethodGet, "/v1.51/containers/json?all=1&size=1", "")
	wantStatus(t, rec, http.StatusOK)
	for _, c := range decode[[]map[string]any](t, rec) {
		if c["SizeRw"] != 12.0 || c["SizeRootFs"] != 1012.0 {
			t.Errorf("ps -s: SizeRw %v SizeRootFs %v", c["SizeRw"], c["SizeRootFs"])
		}
	}
	rec = call(t, s, http.MethodGet, "/v1.51/containers/json?all=1", "")
	for _, c := range decode[[]map[string]any](t, rec) {
		if _, ok := c["SizeRw"]; ok {
			t.Errorf("ps without size has SizeRw: %v", c)
		}
	}
	got := decode[map[string]any](t, call(t, s, http.MethodGet, "/v1.51/containers/test1/json?size=1", ""))
	if got["SizeRw"] != 12.0 || got["SizeRootFs"] != 1012.0 {
		t.Errorf("inspect -s: SizeRw %v SizeRootFs %v", got["SizeRw"], got["SizeRootFs"])
	}
	got = decode[map[string]any](t, call(t, s, http.MethodGet, "/v1.51/containers/test1/json", ""))
	if _, ok := got["SizeRw"]; ok {
		t.Errorf("inspect without size has SizeRw")
	}
}

// TestSystemDF: docker system df's answer: images with the count of
// containers using each, containers with their sizes, empty volumes and
// build cache; type= picks kinds, an unknown one is refused.
func TestSystemDF(t *testing.T) {
	s := newServer(newFakeBackend())
	rec := call(t, s, http.MethodGet, "/v1.51/system/df", "")
	wantStatus(t, rec, http.StatusOK)
	got := decode[map[string]any](t, rec)
	ctrs, _ := got["Containers"].([]any)
	imgs, _ := got["Images"].([]any)
	if len(ctrs) == 0 || len(imgs) == 0 || got["Volumes"] == nil || got["BuildCache"] == nil {
		t.Fatalf("system df: %s", rec.Body.String())
	}
	if c := ctrs[0].(map[string]any); c["SizeRw"] != 12.0 {
		t.Errorf("container SizeRw %v", c["SizeRw"])
	}
	used := 0.0
	for _, i := range imgs {
		used += i.(map[string]any)["Containers"].(float64)
	}
	if used != float64(len(ctrs)) {
		t.Errorf("images used by %v containers in all, want %d", used, len(ctrs))
	}
	got = decode[map[string]any](t, call(t, s, http.MethodGet, "/v1.51/system/df?type=image", ""))
	if got["Containers"] != nil || got["Images"] == nil {
		t.Errorf("type=image: %v", got)
	}
	wantError(t, call(t, s, http.MethodGet, "/v1.51/system/df?type=bogus", ""), http.StatusBadRequest, "unknown object type: bogus")
}

// TestContainerChanges: docker diff's route answers moby's list of
// changes, Kind 0 modified, 1 added, 2 deleted.
func TestContainerChanges(t *testing.T) {
	s := newServer(newFakeBackend())
	rec := call(t, s, http.MethodGet, "/v1.51/containers/test1/changes", "")
	wantStatus(t, rec, http.StatusOK)
	if got, want := strings.TrimSpace(rec.Body.String()), `[{"Kind":0,"Path":"/tmp"},{"Kind":1,"Path":"/tmp/new"}]`; got != want {
		t.Errorf("body %s, want %s", got, want)
	}
	wantError(t, call(t, s, http.MethodGet, "/v1.51/containers/nope/changes", ""), http.StatusNotFound, "No such container: nope")
}

// TestContainerArchiveRoutes: docker cp's three requests — HEAD for what
// is at a path, GET for it as a tar stream, PUT to unpack one — with
// moby's X-Docker-Container-Path-Stat header (base64 of the PathStat's
// JSON), its 404 for a missing path, and its 400 for no path.
func TestContainerArchiveRoutes(t *testing.T) {
	f := newFakeBackend()
	s := newServer(f)
	wantStat := `{"name":"hosts","size":5,"mode":420,"mtime":"2026-12-01T10:00:00Z","linkTarget":""}`
	statOf := func(rec *httptest.ResponseRecorder) string {
		t.Helper()
		b, err := base64.StdEncoding.DecodeString(rec.Header().Get("X-Docker-Container-Path-Stat"))
		if err != nil {
			t.Fatalf("stat header %q: %v", rec.Header().Get("X-Docker-Container-Path-Stat"), err)
		}
		return string(b)
	}
	rec := call(t, s, http.MethodHead, "/v1.51/containers/test1/archive?path=/etc/hosts", "")
	wantStatus(t, rec, http.StatusOK)
	if got := statOf(rec); got != wantStat {
		t.Errorf("HEAD stat %s, want %s", got, wantStat)
	}
	rec = call(t, s, http.MethodGet, "/v1.51/containers/test1/archive?path=/etc/hosts", "")
	wantStatus(t, rec, http.StatusOK)
	if got := statOf(rec); got != wantStat || rec.Header().Get("Content-Type") != "application/x-tar" {
		t.Errorf("GET stat %s, content type %q", got, rec.Header().Get("Content-Type"))
	}
	tr := tar.NewReader(rec.Body)
	if hdr, err := tr.Next(); err != nil || hdr.Name != "hosts" {
		t.Errorf("GET body's first entry %v, %v; want hosts", hdr, err)
	}
	wantError(t, call(t, s, http.MethodGet, "/v1.51/containers/test1/archive?path=/nope", ""), http.StatusNotFound, "Could not find the file /nope in container test1")
	wantError(t, call(t, s, http.MethodGet, "/v1.51/containers/test1/archive", ""), http.StatusBadRequest, "bad parameter: path cannot be empty")
	wantStatus(t, call(t, s, http.MethodHead, "/v1.51/containers/test1/archive?path=/nope", ""), http.StatusNotFound)
	wantError(t, call(t, s, http.MethodGet, "/v1.51/containers/nope/archive?path=/etc/hosts", ""), http.StatusNotFound, "No such container: nope")

	rec = call(t, s, http.MethodPut, "/v1.51/containers/test1/archive?path=/tmp&copyUIDGID=true&noOverwriteDirNonDir=1", "TARBYTES")
	wantStatus(t, rec, http.StatusOK)
	want := extractCall{Ref: "test1", Path: "/tmp", CopyUIDGID: true, NoOverwriteDirNonDir: true, Body: "TARBYTES"}
	if f.rec.Extract != want {
		t.Errorf("extract call %+v, want %+v", f.rec.Extract, want)
	}
	rec = call(t, s, http.MethodGet, "/v1.51/containers/test1/export", "")
	wantStatus(t, rec, http.StatusOK)
	if hdr, err := tar.NewReader(rec.Body).Next(); err != nil || hdr.Name != "hosts" {
		t.Errorf("export's first entry %v, %v", hdr, err)
	}
	wantError(t, call(t, s, http.MethodGet, "/v1.51/containers/nope/export", ""), http.StatusNotFound, "No such container: nope")
	call(t, s, http.MethodPut, "/v1.51/containers/test1/archive?path=/tmp", "x")
	if f.rec.Extract.CopyUIDGID || f.rec.Extract.NoOverwriteDirNonDir {
		t.Errorf("extract call without flags %+v", f.rec.Extract)
	}
}

// A docker cp refused before its archive is read (no such container, a
// read-only path) still reads the archive on, so that the client has
// written it all when the answer comes: net/http would close the
// connection under a client still writing, which then said "broken
// pipe" instead of the error.
func TestRefusedArchiveIsReadOn(t *testing.T) {
	s := newServer(newFakeBackend())
	body := strings.NewReader(strings.Repeat("t", 1<<20))
	req := httptest.NewRequest(http.MethodPut, "/v1.51/containers/nope/archive?path=/tmp", body)
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	wantError(t, rec, http.StatusNotFound, "No such container: nope")
	if body.Len() != 0 {
		t.Errorf("%d bytes of the refused archive left unread", body.Len())
	}
}

// copierBackend extracts as berth's daemon does: a goroutine copies the
// body into a pipe, and the extraction returns once it has read the
// archive (here, size bytes) and the copier is inside its next Read.
type copierBackend struct {
	*fakeBackend
	size     int
	returned chan struct{}
}

func (b *copierBackend) ContainerExtractToDir(ctx context.Context, ref, path string, copyUIDGID, noOverwriteDirNonDir bool, content io.Reader) error {
	pr, pw := io.Pipe()
	began := make(chan struct{})
	next := &nextRead{r: content, after: int64(b.size), began: began}
	go func() {
		_, err := io.Copy(pw, next)
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	defer close(b.returned)
	if _, err := io.ReadFull(pr, make([]byte, b.size)); err != nil {
		return err
	}
	<-began
	return nil
}

// nextRead closes began when a Read begins after the first after bytes.
type nextRead struct {
	r     io.Reader
	after int64
	began chan struct{}
	n     int64
}

func (r *nextRead) Read(p []byte) (int, error) {
	if r.n >= r.after && r.began != nil {
		close(r.began)
		r.began = nil
	}
	n, err := r.r.Read(p)
	r.n += int64(n)
	return n, err
}

// startExtract sends a docker cp's request with its archive (size bytes,
// one chunk) but not its chunked body's end, to a server whose backend
// extracts as copierBackend does.
func startExtract(t *testing.T, size int) (net.Conn, *copierBackend) {
	t.Helper()
	b := &copierBackend{fakeBackend: newFakeBackend(), size: size, returned: make(chan struct{})}
	conn, err := net.Dial("unix", serveUnix(t, New(b, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetReadDeadline(time.Now().Add(time.Minute)) // a hang guard, far beyond settleWait
	head := "PUT /v1.51/containers/test1/archive?path=/ HTTP/1.1\r\nHost: berth\r\nContent-Type: application/x-tar\r\nTransfer-Encoding: chunked\r\n\r\n"
	if _, err := io.WriteString(conn, head+fmt.Sprintf("%x\r\n%s\r\n", size, strings.Repeat("t", size))); err != nil {
		t.Fatal(err)
	}
	return conn, b
}

// readAnswer reads the answer on conn and checks its status.
func readAnswer(t *testing.T, conn net.Conn, status int) *http.Response {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != status {
		t.Errorf("status %d, want %d", resp.StatusCode, status)
	}
	return resp
}

// TestExtractAnswersAfterTheBodysEnd: a docker cp whose archive has been
// read while the client has not yet sent its chunked body's end is
// answered once that end is in, on a connection still open: it was
// closed under the client (net/http aborted the copier's read when the
// handler returned), and the docker CLI said "broken pipe".
func TestExtractAnswersAfterTheBodysEnd(t *testing.T) {
	conn, b := startExtract(t, 2048)
	<-b.returned
	time.Sleep(50 * time.Millisecond) // the answer, and any close, would be out by now
	if _, err := io.WriteString(conn, "0\r\n\r\n"); err != nil {
		t.Fatalf("writing the body's end after the extraction returned: %v", err)
	}
	readAnswer(t, conn, http.StatusOK)
}

// TestExtractAnswersAClientThatStopsSending: a client that never sends
// its body's end still gets the answer (the copier's read is cut after
// settleWait), not a request that hangs with its goroutines.
func TestExtractAnswersAClientThatStopsSending(t *testing.T) {
	conn, _ := startExtract(t, 512)
	if resp := readAnswer(t, conn, http.StatusOK); !resp.Close {
		t.Error("the connection stays open after a body cut short")
	}
}

// TestExposedPortsOnlyOnABridge: exposed ports are shown (inspect's
// Ports, ps's PORTS) for a container on a bridge network only: moby's
// come from the bridge driver's endpoint, the host and null drivers
// report none.
func TestExposedPortsOnlyOnABridge(t *testing.T) {
	c := &container.Container{Config: container.Config{ExposedPorts: []string{"90/tcp"}}, State: container.State{Status: container.StatusRunning}}
	for _, tc := range []struct {
		driver string
		want   []string
	}{
		{network.DriverBridge, []string{"90/tcp"}},
		{network.DriverHost, nil},
		{network.DriverNull, nil},
	} {
		atts := []network.Attachment{{Network: &network.Network{Name: tc.driver, Driver: tc.driver}}}
		if got := livePorts(c, atts); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.driver, got, tc.want)
		}
	}
	if got := livePorts(c, nil); got != nil {
		t.Errorf("no network (another container's namespace): %q", got)
	}
}

// TestContainerInspectExecIDs: inspect lists the container's live execs
// (moby's GetExecIDs), null without any.
func TestContainerInspectExecIDs(t *testing.T) {
	f := newFakeBackend()
	s := newServer(f)
	var got struct{ ExecIDs []string }
	rec := call(t, s, http.MethodGet, "/v1.51/containers/test2/json", "")
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || got.ExecIDs != nil || !strings.Contains(rec.Body.String(), `"ExecIDs":null`) {
		t.Errorf("without execs: %v, %v", got.ExecIDs, err)
	}
	c, err := f.Container(context.Background(), "test2")
	if err != nil {
		t.Fatal(err)
	}
	f.execIDs = map[string][]string{c.ID: {"e1", "e2"}}
	rec = call(t, s, http.MethodGet, "/v1.51/containers/test2/json", "")
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || len(got.ExecIDs) != 2 || got.ExecIDs[0] != "e1" {
		t.Errorf("with execs: %v, %v", got.ExecIDs, err)
	}
}
