package api

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/internal/container"
)

func TestContainerList(t *testing.T) {
	f := newFakeBackend()
	f.containers = append(f.containers, &container.Container{
		ID: hexID("dead"), Name: "old", Created: fakeTime.Add(-time.Hour),
		Config: container.Config{Image: "busybox", Cmd: []string{"true"}, NetworkMode: "bridge", Mounts: []container.Mount{
			{Type: container.MountVolume, Source: "data", Destination: "/data"},
			{Type: container.MountBind, Source: "/srv/www", Destination: "/www"},
			{Type: container.MountTmpfs, Destination: "/scratch", Flag: true},
		}},
		State: container.State{Status: container.StatusExited, ExitCode: 3, StartedAt: fakeTime.Add(-time.Minute), FinishedAt: fakeTime},
	})
	// Restarting (a crash loop between two runs) counts as running, as
	// moby's SetRestarting: plain ps left it out, and the loop hid.
	f.containers = append(f.containers, &container.Container{
		ID: hexID("1009"), Name: "loop", Created: fakeTime.Add(-2 * time.Hour),
		Config: container.Config{Image: "busybox", Cmd: []string{"false"}, NetworkMode: "bridge"},
		State:  container.State{Status: container.StatusRestarting, ExitCode: 1, FinishedAt: fakeTime},
	})
	tests := []struct {
		name, query string
		want        []string
	}{
		{"running only", "", []string{"/test2", "/test1", "/loop"}},
		{"all, newest first", "?all=1", []string{"/test2", "/test1", "/old", "/loop"}},
		{"limit includes stopped", "?limit=1", []string{"/test2"}},
		{"status filter implies all", "?filters=" + url.QueryEscape(`{"status":{"exited":true}}`), []string{"/old"}},
		{"name", "?filters=" + url.QueryEscape(`{"name":{"test1":true}}`), []string{"/test1"}},
		{"id prefix", "?all=1&filters=" + url.QueryEscape(`{"id":["dead"]}`), []string{"/old"}},
		{"label", "?filters=" + url.QueryEscape(`{"label":{"role=db":true}}`), []string{"/test2"}},
		{"network by name", "?filters=" + url.QueryEscape(`{"network":{"web":true}}`), []string{"/test2"}},
		{"ancestor", "?filters=" + url.QueryEscape(`{"ancestor":{"busybox:latest":true}}`), []string{"/test2", "/test1", "/loop"}},
		{"ancestor other", "?filters=" + url.QueryEscape(`{"ancestor":{"alpine":true}}`), nil},
		// exited looks at stopped containers with -a alone, as moby's.
		{"exited code", "?all=1&filters=" + url.QueryEscape(`{"exited":{"3":true}}`), []string{"/old"}},
		{"exited without -a", "?filters=" + url.QueryEscape(`{"exited":{"3":true}}`), nil},
		{"exited as a number", "?all=1&filters=" + url.QueryEscape(`{"exited":{"03":true}}`), []string{"/old"}},
		{"exited other code", "?all=1&filters=" + url.QueryEscape(`{"exited":{"0":true}}`), nil},
		// volume: a mount's destination, a volume's name, a bind's source.
		{"volume by name", "?all=1&filters=" + url.QueryEscape(`{"volume":{"data":true}}`), []string{"/old"}},
		{"volume by destination", "?all=1&filters=" + url.QueryEscape(`{"volume":{"/www":true}}`), []string{"/old"}},
		{"volume by bind source", "?all=1&filters=" + url.QueryEscape(`{"volume":{"/srv/www":true}}`), []string{"/old"}},
		{"volume of --tmpfs", "?all=1&filters=" + url.QueryEscape(`{"volume":{"/scratch":true}}`), nil},
		{"volume none has", "?all=1&filters=" + url.QueryEscape(`{"volume":{"other":true}}`), nil},
		{"network by id", "?filters=" + url.QueryEscape(`{"network":{"`+hexID("32b93b141bae")+`":true}}`), []string{"/test1"}},
	}
	wantError(t, call(t, newServer(f), http.MethodGet, "/v1.51/containers/json?all=1&filters="+url.QueryEscape(`{"exited":{"abc":true}}`), ""),
		http.StatusBadRequest, `invalid filter 'exited=abc': strconv.Atoi: parsing "abc": invalid syntax`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := call(t, newServer(f), http.MethodGet, "/v1.51/containers/json"+tt.query, "")
			wantStatus(t, rec, http.StatusOK)
			var got []string
			for _, c := range decode[[]struct{ Names []string }](t, rec) {
				got = append(got, c.Names...)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("names (-want +got):\n%s", diff)
			}
		})
	}
}

func TestContainerSummaryFields(t *testing.T) {
	f := newFakeBackend()
	rec := call(t, newServer(f), http.MethodGet, "/containers/json?filters="+url.QueryEscape(`{"name":{"test1":true}}`), "")
	wantStatus(t, rec, http.StatusOK)
	got := decode[[]map[string]any](t, rec)[0]
	want := map[string]any{
		"Id": hexID("4fea95f2e979"), "Image": "busybox", "Command": "sleep 1000", "State": "running",
		"Status": "Up 59 minutes", "Created": float64(fakeTime.Unix()),
		"Ports":      []any{map[string]any{"PrivatePort": 80.0, "Type": "tcp"}},
		"HostConfig": map[string]any{"NetworkMode": "bridge"},
	}
	for k, v := range want {
		if diff := cmp.Diff(v, got[k]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", k, diff)
		}
	}
	nets := got["NetworkSettings"].(map[string]any)["Networks"].(map[string]any)
	if nets["bridge"].(map[string]any)["IPAddress"] != "172.17.0.2" {
		t.Errorf("NetworkSettings.Networks = %v", nets)
	}
}
