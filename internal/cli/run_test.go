package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/internal/client"
	"github.com/berth-net/berth/internal/client/clienttest"
)

const runID = "d00dfeed00112233445566778899aabbccddeeff00112233445566778899aabb"

// runDaemon scripts a container's life: attach streams output only after
// start, and wait answers (headers at once, status on exit) exit.
type runDaemon struct {
	*clienttest.Server
	started chan struct{}
	exit    int

	mu      sync.Mutex
	created container.CreateRequest
}

func newRunDaemon(t *testing.T, exit int) *runDaemon {
	t.Helper()
	d := &runDaemon{Server: clienttest.New(t), started: make(chan struct{}), exit: exit}
	d.Handle("POST /containers/create", func(w http.ResponseWriter, r *http.Request) {
		var req container.CreateRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			clienttest.Error(w, 400, err.Error())
			return
		}
		d.mu.Lock()
		d.created = req
		d.mu.Unlock()
		if req.Image == "ghost" {
			clienttest.Error(w, 404, "No such image: ghost:latest")
			return
		}
		clienttest.WriteJSON(w, 201, container.CreateResponse{ID: runID, Warnings: []string{}})
	})
	d.Handle("POST /containers/{id}/attach", func(w http.ResponseWriter, r *http.Request) {
		conn, rw, err := clienttest.Hijack(w, r, client.MediaTypeMultiplexedStream)
		if err != nil {
			return
		}
		defer conn.Close()
		<-d.started
		out := client.FrameWriter{W: conn, Stream: client.StreamStdout}
		_, _ = client.FrameWriter{W: conn, Stream: client.StreamStderr}.Write([]byte("warming up\n"))
		if r.URL.Query().Get("stdin") == "1" {
			in, _ := io.ReadAll(rw) // until the CLI half-closes
			_, _ = out.Write([]byte(strings.ToUpper(string(in))))
			return
		}
		_, _ = out.Write([]byte("hello from the container\n"))
	})
	d.Handle("POST /containers/{id}/wait", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		select {
		case <-d.started:
		case <-r.Context().Done(): // run -d cancels its wait
			return
		}
		_ = json.NewEncoder(w).Encode(container.WaitResponse{StatusCode: int64(d.exit)})
	})
	d.Handle("POST /containers/{id}/start", func(w http.ResponseWriter, r *http.Request) {
		close(d.started)
		w.WriteHeader(http.StatusNoContent)
	})
	return d
}

func TestRunDetachedCreatesWaitsThenStarts(t *testing.T) {
	d := newRunDaemon(t, 0)
	got := runBerth(t, d.Host, "", "run", "-d", "--name", "web", "--network", "web", "--ip", "10.5.0.10", "busybox", "sleep", "1000")
	if diff := cmp.Diff(result{stdout: runID + "\n"}, got, cmp.AllowUnexported(result{})); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	want := []string{
		"POST /containers/create?name=web",
		"POST /containers/" + runID + "/wait?condition=next-exit",
		"POST /containers/" + runID + "/start",
	}
	if diff := cmp.Diff(want, d.Calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	cfg := d.created.Config
	if cfg.AttachStdout || cfg.AttachStderr || cfg.AttachStdin {
		t.Errorf("detached run asked to attach: %+v", cfg)
	}
}

func TestRunForegroundAttachesBeforeStartAndExitsWithStatus(t *testing.T) {
	d := newRunDaemon(t, 3)
	got := runBerth(t, d.Host, "", "run", "busybox", "sh", "-c", "echo hi; exit 3")
	want := result{stdout: "hello from the container\n", stderr: "warming up\n", code: 3}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(result{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	wantCalls := []string{
		"POST /containers/create",
		"POST /containers/" + runID + "/attach?stderr=1&stdout=1&stream=1",
		"POST /containers/" + runID + "/wait?condition=next-exit",
		"POST /containers/" + runID + "/start",
	}
	if diff := cmp.Diff(wantCalls, d.Calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

func TestRunRmWaitsForRemoval(t *testing.T) {
	d := newRunDaemon(t, 0)
	got := runBerth(t, d.Host, "", "run", "--rm", "busybox", "true")
	if got.code != 0 {
		t.Fatalf("exit %d: %s", got.code, got.stderr)
	}
	var waits []string
	for _, c := range d.Calls() {
		if strings.Contains(c, "/wait") {
			waits = append(waits, c)
		}
	}
	if diff := cmp.Diff([]string{"POST /containers/" + runID + "/wait?condition=removed"}, waits); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if !d.created.HostConfig.AutoRemove {
		t.Errorf("AutoRemove not sent")
	}
}

func TestRunInteractiveForwardsStdinUntilEOF(t *testing.T) {
	d := newRunDaemon(t, 0)
	got := runBerth(t, d.Host, "some input\n", "run", "-i", "busybox", "tr", "a-z", "A-Z")
	want := result{stdout: "SOME INPUT\n", stderr: "warming up\n"}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(result{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	cfg := d.created.Config
	if !cfg.AttachStdin || !cfg.OpenStdin || !cfg.StdinOnce {
		t.Errorf("stdin flags not set: %+v", cfg)
	}
}

func TestRunTTYNeedsATerminal(t *testing.T) {
	d := newRunDaemon(t, 0)
	got := runBerth(t, d.Host, "", "run", "-it", "busybox", "sh")
	want := result{stderr: "the input device is not a TTY\n", code: 1}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(result{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if len(d.Calls()) != 0 {
		t.Errorf("calls made: %v", d.Calls())
	}
}

func TestRunMissingImage(t *testing.T) {
	d := newRunDaemon(t, 0)
	got := runBerth(t, d.Host, "", "run", "ghost")
	want := result{
		stderr: "Unable to find image 'ghost:latest' locally\nberth: Error response from daemon: No such image: ghost:latest\n\nRun 'berth run --help' for more information\n",
		code:   125,
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(result{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestRunStartFailureExitCodes(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		code int
	}{
		{`exec: "nope": executable file not found in $PATH`, 127},
		{"exec /etc: permission denied", 126},
		{"network web not found", 125},
	} {
		s := clienttest.New(t)
		s.JSON("POST /containers/create", 201, container.CreateResponse{ID: runID})
		s.Handle("POST /containers/{id}/wait", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		})
		s.Handle("POST /containers/{id}/start", func(w http.ResponseWriter, r *http.Request) {
			clienttest.Error(w, 400, tc.msg)
		})
		got := runBerth(t, s.Host, "", "run", "-d", "busybox", "nope")
		if got.code != tc.code {
			t.Errorf("%q: exit %d, want %d", tc.msg, got.code, tc.code)
		}
		if want := "berth: Error response from daemon: " + tc.msg + "\n\nRun 'berth run --help' for more information\n"; got.stderr != want {
			t.Errorf("stderr %q, want %q", got.stderr, want)
		}
	}
}

func TestCreatePrintsID(t *testing.T) {
	d := newRunDaemon(t, 0)
	got := runBerth(t, d.Host, "", "create", "--name", "c1", "busybox")
	if diff := cmp.Diff(result{stdout: runID + "\n"}, got, cmp.AllowUnexported(result{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"POST /containers/create?name=c1"}, d.Calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}
