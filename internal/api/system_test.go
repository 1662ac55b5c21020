package api

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/internal/version"
)

func TestPingHeaders(t *testing.T) {
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		t.Run(method, func(t *testing.T) {
			rec := call(t, newServer(newFakeBackend()), method, "/_ping", "")
			wantStatus(t, rec, http.StatusOK)
			want := map[string]string{
				"Api-Version":         "1.51",
				"Ostype":              "linux",
				"Docker-Experimental": "false",
				"Builder-Version":     "1",
				"Swarm":               "inactive",
				"Cache-Control":       "no-cache, no-store, must-revalidate",
				"Pragma":              "no-cache",
				"Content-Type":        "text/plain; charset=utf-8",
				"Server":              "berth/" + version.Version + " (linux)",
			}
			got := map[string]string{}
			for k := range want {
				got[k] = rec.Header().Get(k)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
			wantBody := "OK"
			if method == http.MethodHead {
				wantBody = ""
			}
			if rec.Body.String() != wantBody {
				t.Errorf("body = %q, want %q", rec.Body.String(), wantBody)
			}
		})
	}
}

func TestVersionNegotiation(t *testing.T) {
	tests := []struct {
		path    string
		status  int
		message string
	}{
		{"/version", http.StatusOK, ""},
		{"/v1.24/version", http.StatusOK, ""},
		{"/v1.44/networks", http.StatusOK, ""},
		{"/v1.51/version", http.StatusOK, ""},
		{"/v1.51/_ping", http.StatusOK, ""},
		{"/v1.99/version", http.StatusBadRequest, "client version 1.99 is too new. Maximum supported API version is 1.51"},
		{"/v1.52/containers/json", http.StatusBadRequest, "client version 1.52 is too new. Maximum supported API version is 1.51"},
		{"/v1.12/version", http.StatusBadRequest, "client version 1.12 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"},
		{"/v1/version", http.StatusBadRequest, "client version 1 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			rec := call(t, newServer(newFakeBackend()), http.MethodGet, tt.path, "")
			if tt.message != "" {
				wantError(t, rec, tt.status, tt.message)
			} else {
				wantStatus(t, rec, tt.status)
			}
			if rec.Header().Get("Api-Version") != "1.51" || rec.Header().Get("Ostype") != "linux" {
				t.Errorf("common headers missing: %v", rec.Header())
			}
		})
	}
}

func TestVersionInContext(t *testing.T) {
	var got string
	s := newServer(newFakeBackend())
	h := s.middleware(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		got = apiVersion(r.Context()) + " " + r.URL.Path
	}))
	for path, want := range map[string]string{
		"/v1.44/containers/x/json": "1.44 /containers/x/json",
		"/containers/x/json":       "1.51 /containers/x/json",
		"/v1.24/images/a/b:c/json": "1.24 /images/a/b:c/json",
	} {
		rec := httptestRecorder()
		h.ServeHTTP(rec, newRequest(http.MethodGet, path))
		if got != want {
			t.Errorf("%s: handler saw %q, want %q", path, got, want)
		}
	}
}

func TestUnknownRoutes(t *testing.T) {
	s := newServer(newFakeBackend())
	for _, tt := range []struct{ method, path, msg string }{
		{http.MethodGet, "/nope", "page not found"},
		{http.MethodGet, "/v1.51/swarm", "page not found"},
		{http.MethodPut, "/networks/bridge", "page not found"},
		{http.MethodGet, "/distribution/busybox/json", "page not found"},
		{http.MethodGet, "/volumes/data", "get data: no such volume"},
		{http.MethodGet, "/plugins/x/json", `plugin "x" not found`},
		{http.MethodGet, "/v1.51/containers/../x/json", "page not found"},
		{http.MethodGet, "/containers/./x/json", "page not found"},
		{http.MethodGet, "/v1.51//containers/json", "page not found"},
		{http.MethodGet, "/v1.51/containers/..%2F..%2Fetc%2Fpasswd/json", "No such container: ../../etc/passwd"},
		{http.MethodGet, "/containers/..%2F..%2Fetc%2Fpasswd/json", "No such container: ../../etc/passwd"},
		{http.MethodGet, "/v1.51/images/no%2Fsuch/json", "No such image: no/such"},
	} {
		wantError(t, call(t, s, tt.method, tt.path, ""), http.StatusNotFound, tt.msg)
	}
}

func TestVersion(t *testing.T) {
	rec := call(t, newServer(newFakeBackend()), http.MethodGet, "/v1.51/version", "")
	wantStatus(t, rec, http.StatusOK)
	got := decode[map[string]any](t, rec)
	for k, want := range map[string]any{
		"Version": version.Version, "ApiVersion": "1.51", "MinAPIVersion": "1.24",
		"Os": "linux", "KernelVersion": "6.1.0-test", "GitCommit": version.GitCommit,
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	comps, _ := got["Components"].([]any)
	if len(comps) == 0 || comps[0].(map[string]any)["Name"] != "Engine" {
		t.Errorf("Components = %v, want an Engine entry first", got["Components"])
	}
}

func TestInfo(t *testing.T) {
	rec := call(t, newServer(newFakeBackend()), http.MethodGet, "/info", "")
	wantStatus(t, rec, http.StatusOK)
	got := decode[map[string]any](t, rec)
	swarm := got["Swarm"].(map[string]any)
	if swarm["LocalNodeState"] != "inactive" || swarm["ControlAvailable"] != false {
		t.Errorf("Swarm = %v, want inactive without control", swarm)
	}
	for k, want := range map[string]any{
		"ID": "BERTH:TEST", "Name": "testhost", "OSType": "linux", "Containers": 2.0, "ContainersRunning": 2.0,
		"Images": 1.0, "NCPU": 4.0, "DockerRootDir": "/var/lib/berth", "ServerVersion": version.Version,
		"KernelVersion": "6.1.0-test", "Architecture": "x86_64", "InitBinary": "docker-init",
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	// docker info prints these under Plugins (QA round 27: Volume and Log
	// were empty).
	plugins := got["Plugins"].(map[string]any)
	for k, want := range map[string][]any{"Volume": {"local"}, "Network": {"bridge", "host", "null"}, "Log": {"json-file", "local"}} {
		if !cmp.Equal(plugins[k], want) {
			t.Errorf("Plugins.%s = %v, want %v", k, plugins[k], want)
		}
	}
}

// TestInfoPoolsAndWarnings: the daemon's own address pools and its
// warnings reach docker info; without them Warnings is [] and
// DefaultAddressPools absent, as from dockerd.
func TestInfoPoolsAndWarnings(t *testing.T) {
	f := newFakeBackend()
	got := decode[map[string]any](t, call(t, newServer(f), http.MethodGet, "/info", ""))
	if _, ok := got["DefaultAddressPools"]; ok || !cmp.Equal(got["Warnings"], []any{}) {
		t.Errorf("without pools or warnings: DefaultAddressPools %v, Warnings %v", got["DefaultAddressPools"], got["Warnings"])
	}
	f.info.AddressPools = []AddressPool{{Base: "10.200.0.0/16", Size: 24}}
	f.info.Warnings = []string{"WARNING: table ip filter, chain FORWARD (policy drop) drops forwarded packets"}
	f.info.Debug, f.info.LoggingDriver = true, "local"
	got = decode[map[string]any](t, call(t, newServer(f), http.MethodGet, "/info", ""))
	if want := []any{map[string]any{"Base": "10.200.0.0/16", "Size": 24.0}}; !cmp.Equal(got["DefaultAddressPools"], want) {
		t.Errorf("DefaultAddressPools %v, want %v", got["DefaultAddressPools"], want)
	}
	if got["Debug"] != true || got["LoggingDriver"] != "local" {
		t.Errorf("Debug %v, LoggingDriver %v", got["Debug"], got["LoggingDriver"])
	}
	if want := []any{f.info.Warnings[0]}; !cmp.Equal(got["Warnings"], want) {
		t.Errorf("Warnings %v, want %v", got["Warnings"], want)
	}
}

// TestInfoFirewallAndSecurity: docker info's Firewall Backend is
// nftables, with moby's EnableUserlandProxy when the proxy is on, and
// its Security Options name the builtin seccomp profile every container
// gets.
func TestInfoFirewallAndSecurity(t *testing.T) {
	f := newFakeBackend()
	got := decode[map[string]any](t, call(t, newServer(f), http.MethodGet, "/info", ""))
	if want := map[string]any{"Driver": "nftables"}; !cmp.Equal(got["FirewallBackend"], want) {
		t.Errorf("FirewallBackend without the proxy %v, want %v", got["FirewallBackend"], want)
	}
	if want := []any{"name=seccomp,profile=builtin"}; !cmp.Equal(got["SecurityOptions"], want) {
		t.Errorf("SecurityOptions %v, want %v", got["SecurityOptions"], want)
	}
	f.info.UserlandProxy, f.info.CgroupVersion, f.info.CgroupnsPrivate = true, "2", true
	got = decode[map[string]any](t, call(t, newServer(f), http.MethodGet, "/info", ""))
	want := map[string]any{"Driver": "nftables", "Info": []any{[]any{"EnableUserlandProxy", "true"}}}
	if !cmp.Equal(got["FirewallBackend"], want) {
		t.Errorf("FirewallBackend with the proxy %v, want %v", got["FirewallBackend"], want)
	}
	if want := []any{"name=seccomp,profile=builtin", "name=cgroupns"}; !cmp.Equal(got["SecurityOptions"], want) {
		t.Errorf("SecurityOptions on cgroup v2 %v, want %v", got["SecurityOptions"], want)
	}
	f.info.NoNewPrivileges = true
	got = decode[map[string]any](t, call(t, newServer(f), http.MethodGet, "/info", ""))
	if want := []any{"name=seccomp,profile=builtin", "name=cgroupns", "name=no-new-privileges"}; !cmp.Equal(got["SecurityOptions"], want) {
		t.Errorf("SecurityOptions with --no-new-privileges %v, want %v", got["SecurityOptions"], want)
	}
	f.info.Firewalld, f.info.FirewalldReloadedAt = true, time.Date(2026, 12, 2, 16, 0, 0, 0, time.UTC)
	got = decode[map[string]any](t, call(t, newServer(f), http.MethodGet, "/info", ""))
	want = map[string]any{"Driver": "nftables+firewalld", "Info": []any{[]any{"ReloadedAt", "2026-12-02T16:00:00Z"}, []any{"EnableUserlandProxy", "true"}}}
	if !cmp.Equal(got["FirewallBackend"], want) {
		t.Errorf("FirewallBackend with firewalld %v, want %v", got["FirewallBackend"], want)
	}
	old := decode[map[string]any](t, call(t, newServer(f), http.MethodGet, "/v1.48/info", ""))
	if _, ok := old["FirewallBackend"]; ok {
		t.Errorf("FirewallBackend at API 1.48: %v, want none (new in 1.49)", old["FirewallBackend"])
	}
}
