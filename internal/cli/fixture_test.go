package cli

import (
	"bytes"
	"flag"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/internal/client/clienttest"
)

var (
	update    = flag.Bool("update", false, "rewrite golden files with berth's output")
	dockerBin = flag.String("docker", "", "rewrite golden files with the output of this docker CLI run against the same fake daemon")
)

// fixedNow is the clock berth's tests run with; the canned objects are
// dated relative to it (or to the real clock when docker writes goldens,
// since docker cannot be given a clock).
var fixedNow = time.Date(2026, 11, 30, 5, 0, 0, 0, time.UTC)

func baseTime() time.Time {
	if *dockerBin != "" {
		return time.Now()
	}
	return fixedNow
}

const (
	web1ID   = "4f1c2b3a5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70"
	dbID     = "c0ffee00112233445566778899aabbccddeeff00112233445566778899aabbcc"
	idleID   = "0badcafe0011223344556677889900aabbccddeeff00112233445566778899aa"
	busybox  = "sha256:9d5226e6ce3fb6aee2822206a5ef85f38c303d2b37bfc894b419fca2c0501269"
	alpineID = "sha256:1d34ffeaf190be23d3de5a8de0a436676b758f48f835c3a2d4768b798c15a7f1"
	oldID    = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "fixtures", name))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	return bytes.TrimSpace(b)
}

func rawJSON(body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}
}

func notFound(format string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ref := r.PathValue("ref")
		clienttest.Error(w, 404, strings.ReplaceAll(format, "%s", strings.TrimSuffix(ref, "/json")))
	}
}

// cannedDaemon is a fake daemon holding a few networks, containers and
// images, shaped as Docker 28 answers.
func cannedDaemon(t *testing.T) *clienttest.Server {
	t.Helper()
	now := baseTime()
	s := clienttest.New(t)

	bridge, web := fixture(t, "network_bridge.json"), fixture(t, "network_web.json")
	s.JSON("GET /networks", 200, cannedNetworks(t, now))
	s.Handle("GET /networks/{ref}", func(w http.ResponseWriter, r *http.Request) {
		switch r.PathValue("ref") {
		case "bridge", "7c3af6a1e2b4":
			rawJSON(bridge)(w, r)
		case "web":
			rawJSON(web)(w, r)
		default:
			notFound("network %s not found")(w, r)
		}
	})

	s.Handle("DELETE /networks/{ref}", func(w http.ResponseWriter, r *http.Request) {
		switch r.PathValue("ref") {
		case "web", "net2":
			w.WriteHeader(http.StatusNoContent)
		case "bridge", "host", "none":
			clienttest.Error(w, 403, r.PathValue("ref")+" is a pre-defined network and cannot be removed")
		default:
			notFound("network %s not found")(w, r)
		}
	})

	web1 := fixture(t, "container_web1.json")
	s.Handle("GET /containers/json", func(w http.ResponseWriter, r *http.Request) {
		list := cannedContainers(now)
		if r.URL.Query().Get("all") != "1" {
			list = list[:1]
		}
		if r.URL.Query().Get("size") == "1" {
			for i := range list {
				list[i].SizeRw, list[i].SizeRootFs = int64(6+i*4000), 2167176
			}
		}
		clienttest.WriteJSON(w, 200, list)
	})
	s.Handle("GET /containers/{ref}/json", func(w http.ResponseWriter, r *http.Request) {
		if ref := r.PathValue("ref"); ref == "web1" || strings.HasPrefix(web1ID, ref) {
			rawJSON(web1)(w, r)
			return
		}
		notFound("No such container: %s")(w, r)
	})

	img := fixture(t, "image_busybox.json")
	s.JSON("GET /images/json", 200, cannedImages(now))
	s.Handle("GET /images/{ref...}", func(w http.ResponseWriter, r *http.Request) {
		switch strings.TrimSuffix(r.PathValue("ref"), "/json") {
		case "busybox", "busybox:latest":
			rawJSON(img)(w, r)
		default:
			notFound("No such image: %s")(w, r)
		}
	})
	s.JSON("GET /version", 200, cannedVersion())
	// What docker inspect's search falls through to after networks.
	s.Handle("GET /volumes/{ref}", notFound("get %s: no such volume"))
	s.JSON("GET /info", 200, map[string]any{"ID": "fake", "OSType": "linux", "Swarm": map[string]any{"LocalNodeState": "inactive", "ControlAvailable": false}})
	return s
}

func cannedNetworks(t *testing.T, now time.Time) []network.Summary {
	t.Helper()
	id := func(c byte) string { return strings.Repeat(string(c), 64) }
	created := now.Add(-time.Hour)
	return []network.Summary{
		{Name: "web", ID: "a91b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9", Created: created, Scope: "local", Driver: "bridge", EnableIPv4: true, Internal: true, Labels: map[string]string{"env": "test", "com.example.team": "net"}, Containers: map[string]network.EndpointResource{}},
		{Name: "net10", ID: id('b'), Created: created, Scope: "local", Driver: "bridge", EnableIPv4: true, Containers: map[string]network.EndpointResource{}},
		{Name: "bridge", ID: "7c3af6a1e2b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e", Created: created, Scope: "local", Driver: "bridge", EnableIPv4: true, Containers: map[string]network.EndpointResource{}},
		{Name: "none", ID: id('d'), Created: created, Scope: "local", Driver: "null", EnableIPv4: true, Containers: map[string]network.EndpointResource{}},
		{Name: "net2", ID: id('c'), Created: created, Scope: "local", Driver: "bridge", EnableIPv4: true, Containers: map[string]network.EndpointResource{}},
		{Name: "host", ID: id('e'), Created: created, Scope: "local", Driver: "host", EnableIPv4: true, Containers: map[string]network.EndpointResource{}},
	}
}

// cannedContainers: the running one first (ps without -a shows only it).
func cannedContainers(now time.Time) []container.Summary {
	return []container.Summary{
		{
			ID: web1ID, Names: []string{"/web1"}, Image: "busybox", ImageID: busybox,
			Command: "sh -c 'while true; do sleep 1; done'", Created: now.Add(-30*time.Minute - 20*time.Second).Unix(),
			Ports: []container.Port{
				{IP: "0.0.0.0", PrivatePort: 80, PublicPort: 8080, Type: "tcp"},
				{IP: "::", PrivatePort: 80, PublicPort: 8080, Type: "tcp"},
				{IP: "127.0.0.1", PrivatePort: 9000, PublicPort: 9000, Type: "udp"},
			},
			State: "running", Status: "Up 5 seconds",
		},
		{
			ID: dbID, Names: []string{"/db", "/web1/db"}, Image: busybox, ImageID: busybox,
			Command: "sleep 1000", Created: now.Add(-2 * time.Hour).Unix(),
			State: "exited", Status: "Exited (0) 3 minutes ago",
			Labels: map[string]string{"tier": "data"},
		},
		{
			ID: idleID, Names: []string{"/idle"}, Image: "alpine:3.20", ImageID: alpineID,
			Command: "/bin/sh", Created: now.Add(-49 * time.Hour).Unix(),
			Ports: []container.Port{
				{PrivatePort: 8002, Type: "tcp"}, {PrivatePort: 8000, Type: "tcp"}, {PrivatePort: 8001, Type: "tcp"},
				{PrivatePort: 53, Type: "udp"},
			},
			State: "created", Status: "Created",
		},
	}
}

func cannedImages(now time.Time) []image.Summary {
	return []image.Summary{
		{ID: busybox, RepoTags: []string{"busybox:latest"}, Created: now.Add(-24 * time.Hour).Unix(), Size: 2167176, SharedSize: -1, Containers: -1},
		{ID: alpineID, RepoTags: []string{"alpine:3.20", "alpine:latest"}, Created: now.Add(-3 * 24 * time.Hour).Unix(), Size: 8827264, SharedSize: -1, Containers: -1},
		{ID: oldID, RepoTags: []string{}, Created: now.Add(-60 * 24 * time.Hour).Unix(), Size: 1234, SharedSize: -1, Containers: -1},
	}
}

func cannedVersion() types.Version {
	return types.Version{
		Platform: struct{ Name string }{"berth"},
		Components: []types.ComponentVersion{{
			Name: "Engine", Version: "0.1.0-dev",
			Details: map[string]string{
				"ApiVersion": "1.51", "MinAPIVersion": "1.24", "GitCommit": "abc1234",
				"GoVersion": "go1.26.8", "Os": "linux", "Arch": "amd64",
				"BuildTime": "2026-11-30T04:00:00.000000000+00:00", "Experimental": "false",
			},
		}},
		Version: "0.1.0-dev", APIVersion: "1.51", MinAPIVersion: "1.24", GitCommit: "abc1234",
		GoVersion: "go1.26.8", Os: "linux", Arch: "amd64", KernelVersion: "6.1.0",
	}
}

// result is what one CLI run produced.
type result struct {
	stdout, stderr string
	code           int
}

// runBerth runs the berth CLI in-process against host.
func runBerth(t *testing.T, host, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{in: strings.NewReader(stdin), out: &out, err: &errb, now: func() time.Time {
		if *dockerBin != "" {
			return time.Now()
		}
		return fixedNow
	}}
	root := newRootCommand(e)
	root.SetArgs(append([]string{"-H", host}, args...))
	code := Execute(root)
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// runDocker runs the real docker CLI against host, for writing goldens.
func runDocker(t *testing.T, host string, args ...string) result {
	t.Helper()
	cmd := exec.Command(*dockerBin, args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+host, "DOCKER_CONFIG="+t.TempDir())
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run docker: %v", err)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// checkGolden compares berth's stdout for args with testdata/<name>.golden.
// With -docker, the golden is first rewritten from docker's output for the
// same arguments, so the goldens record what docker 28 prints.
func checkGolden(t *testing.T, name string, args ...string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *dockerBin != "" {
		srv := cannedDaemon(t)
		d := runDocker(t, srv.Host, args...)
		if d.code != 0 {
			t.Fatalf("docker %v: exit %d: %s", args, d.code, d.stderr)
		}
		writeGolden(t, path, d.stdout)
	}
	srv := cannedDaemon(t)
	got := runBerth(t, srv.Host, "", args...)
	if got.code != 0 {
		t.Fatalf("berth %v: exit %d: %s", args, got.code, got.stderr)
	}
	if *update && *dockerBin == "" {
		writeGolden(t, path, got.stdout)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden: %v", err)
	}
	if diff := cmp.Diff(string(want), got.stdout); diff != "" {
		t.Errorf("berth %s: output differs from %s (-want +got):\n%s", strings.Join(args, " "), path, diff)
	}
}

func writeGolden(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatalf("write golden: %v", err)
	}
}
