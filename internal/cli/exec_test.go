package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/internal/client"
	"github.com/berth-net/berth/internal/client/clienttest"
)

// execDaemon fakes one exec: the process echoes stdin (upper-cased) or
// prints a line, or fails to start with a system error, and exits with exit.
func execDaemon(t *testing.T, exit int, startFailure string) (*clienttest.Server, *container.ExecOptions) {
	t.Helper()
	s := clienttest.New(t)
	var created container.ExecOptions
	s.JSON("GET /containers/{ref}/json", 200, map[string]any{"Id": web1ID, "Config": map[string]any{}})
	s.Handle("POST /containers/{ref}/exec", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewDecoder(r.Body).Decode(&created)
		clienttest.WriteJSON(w, 201, map[string]string{"Id": "exec1"})
	})
	s.Handle("POST /exec/{id}/start", func(w http.ResponseWriter, r *http.Request) {
		var start container.ExecStartOptions
		_ = json.NewDecoder(r.Body).Decode(&start)
		if start.Detach {
			w.WriteHeader(http.StatusOK)
			return
		}
		conn, rw, err := clienttest.Hijack(w, r, client.MediaTypeMultiplexedStream)
		if err != nil {
			return
		}
		defer conn.Close()
		out := client.FrameWriter{W: conn, Stream: client.StreamStdout}
		switch {
		case startFailure != "":
			_, _ = client.FrameWriter{W: conn, Stream: client.StreamSystemErr}.Write([]byte(startFailure))
		case created.AttachStdin:
			in, _ := io.ReadAll(rw)
			_, _ = out.Write([]byte(strings.ToUpper(string(in))))
		default:
			_, _ = out.Write([]byte("ran " + strings.Join(created.Cmd, " ") + "\n"))
			_, _ = client.FrameWriter{W: conn, Stream: client.StreamStderr}.Write([]byte("to stderr\n"))
		}
	})
	s.JSON("GET /exec/{id}/json", 200, container.ExecInspect{ExecID: "exec1", ContainerID: web1ID, ExitCode: exit})
	return s, &created
}

func TestExecPassesOutputAndExitCode(t *testing.T) {
	s, created := execDaemon(t, 42, "")
	got := runBerth(t, s.Host, "", "exec", "-e", "A=1", "-u", "nobody", "-w", "/tmp", "web1", "sh", "-c", "exit 42")
	want := result{stdout: "ran sh -c exit 42\n", stderr: "to stderr\n", code: 42}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(result{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	wantReq := container.ExecOptions{User: "nobody", AttachStderr: true, AttachStdout: true, Env: []string{"A=1"}, WorkingDir: "/tmp", Cmd: []string{"sh", "-c", "exit 42"}}
	if diff := cmp.Diff(wantReq, *created); diff != "" {
		t.Errorf("exec request (-want +got):\n%s", diff)
	}
	wantCalls := []string{
		"GET /containers/web1/json",
		"POST /containers/web1/exec",
		"POST /exec/exec1/start",
		"GET /exec/exec1/json",
	}
	if diff := cmp.Diff(wantCalls, s.Calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

func TestExecZeroExit(t *testing.T) {
	s, _ := execDaemon(t, 0, "")
	if got := runBerth(t, s.Host, "", "exec", "web1", "true"); got.code != 0 {
		t.Errorf("exit %d: %s", got.code, got.stderr)
	}
}

func TestExecInteractiveStdin(t *testing.T) {
	s, created := execDaemon(t, 0, "")
	got := runBerth(t, s.Host, "abc\n", "exec", "-i", "web1", "cat")
	if diff := cmp.Diff(result{stdout: "ABC\n"}, got, cmp.AllowUnexported(result{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if !created.AttachStdin {
		t.Errorf("AttachStdin not sent")
	}
}

func TestExecCommandNotFound(t *testing.T) {
	msg := `OCI runtime exec failed: exec failed: unable to start container process: exec: "nope": executable file not found in $PATH`
	s, _ := execDaemon(t, 127, msg)
	got := runBerth(t, s.Host, "", "exec", "web1", "nope")
	if diff := cmp.Diff(result{stderr: msg + "\n", code: 127}, got, cmp.AllowUnexported(result{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestExecDetached(t *testing.T) {
	s, created := execDaemon(t, 0, "")
	got := runBerth(t, s.Host, "", "exec", "-d", "web1", "sleep", "5")
	if got.code != 0 {
		t.Fatalf("exit %d: %s", got.code, got.stderr)
	}
	if created.AttachStdout || created.AttachStderr {
		t.Errorf("detached exec attached: %+v", created)
	}
}

func TestExecUnknownContainer(t *testing.T) {
	s := clienttest.New(t)
	s.Handle("GET /containers/{ref}/json", func(w http.ResponseWriter, r *http.Request) {
		clienttest.Error(w, 404, "No such container: "+r.PathValue("ref"))
	})
	got := runBerth(t, s.Host, "", "exec", "ghost", "ls")
	if diff := cmp.Diff(result{stderr: "Error response from daemon: No such container: ghost\n", code: 1}, got, cmp.AllowUnexported(result{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
