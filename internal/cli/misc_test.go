package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/internal/client"
	"github.com/berth-net/berth/internal/client/clienttest"
)

// importDaemon accepts imports and keeps the last body it was sent.
func importDaemon(t *testing.T, body *string) *clienttest.Server {
	t.Helper()
	s := clienttest.New(t)
	s.Handle("POST /images/create", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		*body = string(b)
		if len(b) == 0 {
			w.WriteHeader(200)
			_, _ = io.WriteString(w, `{"errorDetail":{"message":"archive is empty"},"error":"archive is empty"}`+"\r\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"`+busybox+`"}`+"\r\n")
	})
	return s
}

func TestImport(t *testing.T) {
	tarball := filepath.Join(t.TempDir(), "rootfs.tar")
	if err := os.WriteFile(tarball, []byte("pretend tar"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		call  string
	}{
		{"file with name and tag", []string{"import", tarball, "busybox:1.36"}, "", "POST /images/create?fromSrc=-&repo=busybox%3A1.36"},
		{"stdin, image import alias", []string{"image", "import", "-", "busybox"}, "pretend tar", "POST /images/create?fromSrc=-&repo=busybox"},
		{"registry port is not a tag", []string{"import", tarball, "localhost:5000/bb"}, "", "POST /images/create?fromSrc=-&repo=localhost%3A5000%2Fbb"},
		{"no name", []string{"import", "-m", "hello", tarball}, "", "POST /images/create?fromSrc=-&message=hello"},
		{"changes", []string{"import", "-c", `CMD ["sh"]`, "--change", "ENV A=1", tarball, "app"}, "", "POST /images/create?changes=CMD+%5B%22sh%22%5D&changes=ENV+A%3D1&fromSrc=-&repo=app"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body string
			s := importDaemon(t, &body)
			got := runBerth(t, s.Host, tc.stdin, tc.args...)
			if diff := cmp.Diff(result{stdout: busybox + "\n"}, got, cmp.AllowUnexported(result{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if body != "pretend tar" {
				t.Errorf("body %q, want the raw tarball", body)
			}
			if diff := cmp.Diff([]string{tc.call}, s.Calls()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	}
}

func TestImportErrors(t *testing.T) {
	var body string
	s := importDaemon(t, &body)
	got := runBerth(t, s.Host, "", "import", "-", "empty")
	if diff := cmp.Diff(result{stderr: "archive is empty\n", code: 1}, got, cmp.AllowUnexported(result{})); diff != "" {
		t.Errorf("stream error (-want +got):\n%s", diff)
	}
	missing := filepath.Join(t.TempDir(), "missing.tar")
	got = runBerth(t, s.Host, "", "import", missing)
	if got.code != 1 || !strings.Contains(got.stderr, "no such file or directory") {
		t.Errorf("missing file: %+v", got)
	}
	// A name docker refuses is refused before anything is sent, in the
	// docker CLI's words (the daemon would refuse it before it reads the
	// upload, which the client would see as a broken pipe).
	calls := len(s.Calls())
	got = runBerth(t, s.Host, "pretend tar", "import", "-", "BAD")
	want := result{stderr: "invalid reference format: repository name (library/BAD) must be lowercase\n", code: 1}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(result{})); diff != "" {
		t.Errorf("bad name (-want +got):\n%s", diff)
	}
	if n := len(s.Calls()); n != calls {
		t.Errorf("bad name: %d requests sent", n-calls)
	}
}

func TestRmi(t *testing.T) {
	s := clienttest.New(t)
	s.Handle("DELETE /images/{ref...}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("ref") != "busybox" {
			clienttest.Error(w, 404, "No such image: "+r.PathValue("ref"))
			return
		}
		clienttest.WriteJSON(w, 200, []image.DeleteResponse{{Untagged: "busybox:latest"}, {Deleted: busybox}})
	})
	got := runBerth(t, s.Host, "", "rmi", "busybox", "ghost")
	want := result{
		stdout: "Untagged: busybox:latest\nDeleted: " + busybox + "\n",
		stderr: "Error response from daemon: No such image: ghost\n",
		code:   1,
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(result{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// -f: an image that is not there is said, and the command succeeds
	// (docker rmi -f), which `set -e` scripts rely on.
	got = runBerth(t, s.Host, "", "rmi", "-f", "ghost")
	want = result{stderr: "Error response from daemon: No such image: ghost\n"}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(result{})); diff != "" {
		t.Errorf("rmi -f ghost (-want +got):\n%s", diff)
	}
}

func TestStopKillRm(t *testing.T) {
	s := clienttest.New(t)
	for _, p := range []string{"POST /containers/{id}/stop", "POST /containers/{id}/kill", "DELETE /containers/{id}"} {
		s.Handle(p, func(w http.ResponseWriter, r *http.Request) {
			switch r.PathValue("id") {
			case "ghost":
				clienttest.Error(w, 404, "No such container: ghost")
			case "done": // already stopped: docker's client counts it a success
				w.WriteHeader(http.StatusNotModified)
			default:
				w.WriteHeader(http.StatusNoContent)
			}
		})
	}
	s.Handle("POST /containers/{id}/start", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotModified) // already running
	})
	for _, tc := range []struct {
		args []string
		want result
	}{
		{[]string{"stop", "-t", "3", "a", "b"}, result{stdout: "a\nb\n"}},
		{[]string{"stop", "a", "ghost"}, result{stdout: "a\n", stderr: "Error response from daemon: No such container: ghost\n", code: 1}},
		{[]string{"kill", "-s", "HUP", "a"}, result{stdout: "a\n"}},
		{[]string{"rm", "-f", "a", "ghost"}, result{stdout: "a\n", stderr: "Error response from daemon: No such container: ghost\n"}},
		{[]string{"rm", "ghost"}, result{stderr: "Error response from daemon: No such container: ghost\n", code: 1}},
		{[]string{"stop", "done"}, result{stdout: "done\n"}},
		{[]string{"start", "up"}, result{stdout: "up\n"}},
	} {
		got := runBerth(t, s.Host, "", tc.args...)
		if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(result{})); diff != "" {
			t.Errorf("%v (-want +got):\n%s", tc.args, diff)
		}
	}
	want := []string{
		"POST /containers/a/stop?t=3", "POST /containers/b/stop?t=3",
		"POST /containers/a/stop", "POST /containers/ghost/stop",
		"POST /containers/a/kill?signal=HUP",
		"DELETE /containers/a?force=1", "DELETE /containers/ghost?force=1",
		"DELETE /containers/ghost",
		"POST /containers/done/stop", "POST /containers/up/start",
	}
	if diff := cmp.Diff(want, s.Calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

func TestLogs(t *testing.T) {
	for _, tty := range []bool{false, true} {
		s := clienttest.New(t)
		s.JSON("GET /containers/{ref}/json", 200, map[string]any{"Id": web1ID, "Config": map[string]any{"Tty": tty}})
		s.Handle("GET /containers/{id}/logs", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			if tty {
				_, _ = io.WriteString(w, "raw line\n")
				return
			}
			_, _ = client.FrameWriter{W: w, Stream: client.StreamStdout}.Write([]byte("out line\n"))
			_, _ = client.FrameWriter{W: w, Stream: client.StreamStderr}.Write([]byte("err line\n"))
		})
		got := runBerth(t, s.Host, "", "logs", "--tail", "5", "-f", "web1")
		want := result{stdout: "out line\n", stderr: "err line\n"}
		if tty {
			want = result{stdout: "raw line\n"}
		}
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(result{})); diff != "" {
			t.Errorf("tty=%v (-want +got):\n%s", tty, diff)
		}
		wantCalls := []string{"GET /containers/web1/json", "GET /containers/" + web1ID + "/logs?follow=1&stderr=1&stdout=1&tail=5"}
		if diff := cmp.Diff(wantCalls, s.Calls()); diff != "" {
			t.Errorf("calls (-want +got):\n%s", diff)
		}
	}
}

// TestLogsTimes: -t, --details, --since and --until go to the daemon as
// the docker CLI sends them (seconds.nanoseconds), from its forms of a
// time.
func TestLogsTimes(t *testing.T) {
	s := clienttest.New(t)
	s.JSON("GET /containers/{ref}/json", 200, map[string]any{"Id": web1ID, "Config": map[string]any{}})
	s.Handle("GET /containers/{id}/logs", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	if got := runBerth(t, s.Host, "", "logs", "-t", "--details", "--since", "1700000000.25", "--until", "2026-01-02T03:04:05Z", "web1"); got.code != 0 {
		t.Fatalf("%+v", got)
	}
	want := "GET /containers/" + web1ID + "/logs?details=1&since=1700000000.250000000&stderr=1&stdout=1&tail=all&timestamps=1&until=1767323045.000000000"
	if calls := s.Calls(); len(calls) != 2 || calls[1] != want {
		t.Errorf("calls %q, want the logs call %q", calls, want)
	}
	now := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	loc := func(s string) time.Time { t, _ := time.ParseInLocation("2006-01-02T15:04:05", s, time.Local); return t }
	for in, want := range map[string]time.Time{
		"42m": now.Add(-42 * time.Minute), "1700000000": time.Unix(1700000000, 0), "": {}, "0": {},
		// docker's timetypes forms: parts after the hour left out, with
		// a zone or in local time; a date with a zone.
		"2000-01-01T00:00Z":      time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		"2000-01-01Z":            time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		"2000-01-01T05+01:00":    time.Date(2000, 1, 1, 4, 0, 0, 0, time.UTC),
		"2000-01-01T05:06+01:00": time.Date(2000, 1, 1, 4, 6, 0, 0, time.UTC),
		"2000-01-01T05:06:07.5Z": time.Date(2000, 1, 1, 5, 6, 7, 5e8, time.UTC),
		"2000-01-01T05":          loc("2000-01-01T05:00:00"),
		"2000-01-01":             loc("2000-01-01T00:00:00"),
		"2000-01-01T05:06:07":    loc("2000-01-01T05:06:07"),
	} {
		if got, err := logTime(in, now); err != nil || !got.Equal(want) {
			t.Errorf("logTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := logTime("yesterday", now); err == nil {
		t.Error("logTime(yesterday) took it")
	}
	if got := runBerth(t, s.Host, "", "logs", "--since", "abc", "web1"); got.code == 0 || !strings.Contains(got.stderr, `invalid value for "since": failed to parse value as time or duration: "abc"`) {
		t.Errorf("logs --since abc: %+v", got)
	}
}

func TestVersionDefaultOutput(t *testing.T) {
	s := cannedDaemon(t)
	got := runBerth(t, s.Host, "", "version")
	if got.code != 0 {
		t.Fatalf("%+v", got)
	}
	for _, line := range []string{
		"Client: berth\n Version:           0.1.0-dev\n API version:       1.51\n",
		"\nServer: berth\n Engine:\n  Version:          0.1.0-dev\n  API version:      1.51 (minimum version 1.24)\n",
		"  Built:            Mon Nov 30 04:00:00 2026\n",
		"  Experimental:     false\n",
	} {
		if !strings.Contains(got.stdout, line) {
			t.Errorf("output lacks %q:\n%s", line, got.stdout)
		}
	}
}

func TestVersionWithoutDaemonStillPrintsClient(t *testing.T) {
	host := "unix://" + filepath.Join(t.TempDir(), "none.sock")
	got := runBerth(t, host, "", "version", "--format", "{{.Client.Version}} {{.Client.APIVersion}}")
	want := result{stdout: "0.1.0-dev 1.51\n", stderr: "Cannot connect to the berth daemon at " + host + ". Is the berth daemon running?\n", code: 1}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(result{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestInfo(t *testing.T) {
	s := cannedDaemon(t)
	got := runBerth(t, s.Host, "", "info", "--format", "{{.OSType}} {{.Swarm.LocalNodeState}}")
	if diff := cmp.Diff(result{stdout: "linux inactive\n"}, got, cmp.AllowUnexported(result{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	got = runBerth(t, s.Host, "", "info")
	if got.code != 0 || !strings.Contains(got.stdout, "\nServer:\n Containers: 0\n") {
		t.Errorf("%+v", got)
	}
	// docker's template data has the client's section and the errors
	// beside the daemon's fields (they failed with exit 1).
	got = runBerth(t, s.Host, "", "info", "--format", "{{.ClientInfo.Context}} {{json .ServerErrors}} {{.ClientInfo.Debug}} {{.OSType}}")
	if diff := cmp.Diff(result{stdout: "default null false linux\n"}, got, cmp.AllowUnexported(result{})); diff != "" {
		t.Errorf("info's client section (-want +got):\n%s", diff)
	}
}

func TestDebugLogsRequests(t *testing.T) {
	s := cannedDaemon(t)
	got := runBerth(t, s.Host, "", "--debug", "network", "ls", "-q")
	if got.code != 0 || !strings.Contains(got.stderr, `msg="api request" method=GET path=/v1.51/networks`) {
		t.Errorf("%+v", got)
	}
	if quiet := runBerth(t, s.Host, "", "network", "ls", "-q"); quiet.stderr != "" {
		t.Errorf("without --debug: stderr %q", quiet.stderr)
	}
}

// --format json prints docker's keys (recorded from docker 28; goldens
// cannot hold these lines since they mix absolute and relative times).
func TestJSONFormatKeys(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"ps", "--format", "json"}, []string{"Command", "CreatedAt", "ID", "Image", "Labels", "LocalVolumes", "Mounts", "Names", "Networks", "Platform", "Ports", "RunningFor", "Size", "State", "Status"}},
		{[]string{"images", "--format", "json"}, []string{"Containers", "CreatedAt", "CreatedSince", "Digest", "ID", "Repository", "SharedSize", "Size", "Tag", "UniqueSize", "VirtualSize"}},
		{[]string{"network", "ls", "--format", "json"}, []string{"CreatedAt", "Driver", "ID", "IPv4", "IPv6", "Internal", "Labels", "Name", "Scope"}},
	} {
		s := cannedDaemon(t)
		got := runBerth(t, s.Host, "", tc.args...)
		first, _, _ := strings.Cut(got.stdout, "\n")
		var m map[string]any
		if err := json.Unmarshal([]byte(first), &m); err != nil {
			t.Fatalf("%v: decode %q: %v", tc.args, got.stdout, err)
		}
		var keys []string
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if diff := cmp.Diff(tc.want, keys); diff != "" {
			t.Errorf("%v keys (-docker +berth):\n%s", tc.args, diff)
		}
	}
}

// TestForwardedSignals: every signal but the CLI's own goes to the
// container by the name the daemon takes (docker's ForwardAllSignals);
// only SIGINT and SIGTERM went, and a hang-up or ^\ ended the CLI.
func TestForwardedSignals(t *testing.T) {
	for sig, want := range map[syscall.Signal]string{
		syscall.SIGHUP: "SIGHUP", syscall.SIGQUIT: "SIGQUIT", syscall.SIGUSR1: "SIGUSR1", syscall.SIGINT: "SIGINT",
		syscall.SIGTERM: "SIGTERM", syscall.SIGWINCH: "SIGWINCH", syscall.Signal(40): "40",
		syscall.SIGCHLD: "", syscall.SIGPIPE: "", syscall.SIGURG: "",
	} {
		if got := forwardedName(sig); got != want {
			t.Errorf("forwardedName(%v) = %q, want %q", sig, got, want)
		}
	}
}
