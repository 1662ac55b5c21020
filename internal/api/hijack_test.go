package api

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/pkg/stdcopy"
	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/internal/container"
)

// rawStream is the client end of a hijacked request, read the way the
// docker client reads it: a status line and headers, then the stream.
type rawStream struct {
	conn   *net.UnixConn
	r      *bufio.Reader
	status string
	header textproto.MIMEHeader
}

func hijackRequest(t *testing.T, sock, path, body string, upgrade bool) *rawStream {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	conn := c.(*net.UnixConn)
	t.Cleanup(func() { conn.Close() })
	var req strings.Builder
	fmt.Fprintf(&req, "POST %s HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", path, len(body))
	if upgrade {
		req.WriteString("Connection: Upgrade\r\nUpgrade: tcp\r\n")
	}
	req.WriteString("\r\n" + body)
	if _, err := io.WriteString(conn, req.String()); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	tp := textproto.NewReader(r)
	status, err := tp.ReadLine()
	if err != nil {
		t.Fatal(err)
	}
	hdr, err := tp.ReadMIMEHeader()
	if err != nil {
		t.Fatal(err)
	}
	return &rawStream{conn: conn, r: r, status: status, header: hdr}
}

func (s *rawStream) wantHead(t *testing.T, status, contentType string) {
	t.Helper()
	if s.status != status {
		t.Errorf("status line = %q, want %q", s.status, status)
	}
	if ct := s.header.Get("Content-Type"); ct != contentType {
		t.Errorf("Content-Type = %q, want %q", ct, contentType)
	}
	if strings.HasPrefix(status, "HTTP/1.1 101") && (s.header.Get("Connection") != "Upgrade" || s.header.Get("Upgrade") != "tcp") {
		t.Errorf("upgrade headers = %v", s.header)
	}
	// The stream is the connection now: no Connection: close from the
	// http.Server's handler wrapper (closeAfterAnswer) may ride along.
	if v := s.header.Values("Connection"); len(v) > 1 || slices.ContainsFunc(v, func(x string) bool { return strings.EqualFold(x, "close") }) {
		t.Errorf("Connection headers of a stream = %q", v)
	}
	if s.header.Get("Api-Version") != "1.51" {
		t.Errorf("Api-Version missing from the upgrade response: %v", s.header)
	}
}

func createExec(t *testing.T, f *fakeBackend, cfg ExecConfig) string {
	t.Helper()
	id, err := f.CreateExec(context.Background(), "test1", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestExecHijackMultiplexed covers the whole docker exec -i contract: 101
// with the multiplexed type, stdcopy frames, half-close reaching the
// process as EOF while its output continues, and the stream closing only
// after StartExec returned with the exit code recorded.
func TestExecHijackMultiplexed(t *testing.T) {
	f := newFakeBackend()
	id := createExec(t, f, ExecConfig{Cmd: []string{"cat"}, AttachStdin: true, AttachStdout: true, AttachStderr: true})
	release := make(chan struct{})
	var released atomic.Bool
	f.startExec = func(_ context.Context, id string, detach bool, s Streams) error {
		in, err := io.ReadAll(s.Stdin) // returns once the client half-closes
		if err != nil {
			return err
		}
		fmt.Fprintf(s.Stdout, "got %q", in)
		fmt.Fprint(s.Stderr, "stdin closed")
		fmt.Fprint(s.Stdout, "; still writing after EOF")
		<-release
		f.setExitCode(id, 3)
		return nil
	}
	s := newServer(f)
	sock := serveUnix(t, s)
	rs := hijackRequest(t, sock, "/v1.51/exec/"+id+"/start", `{"Detach":false,"Tty":false}`, true)
	rs.wantHead(t, "HTTP/1.1 101 UPGRADED", mediaMultiplexedStream)

	if _, err := io.WriteString(rs.conn, "hello"); err != nil {
		t.Fatal(err)
	}
	if err := rs.conn.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	done := make(chan error, 1)
	var closedEarly atomic.Bool
	go func() {
		_, err := stdcopy.StdCopy(&stdout, &stderr, rs.r)
		closedEarly.Store(!released.Load())
		done <- err
	}()
	released.Store(true)
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("demultiplex: %v", err)
	}
	if closedEarly.Load() {
		t.Error("the stream closed before StartExec returned")
	}
	if diff := cmp.Diff(`got "hello"; still writing after EOF`, stdout.String()); diff != "" {
		t.Errorf("stdout (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff("stdin closed", stderr.String()); diff != "" {
		t.Errorf("stderr (-want +got):\n%s", diff)
	}
	rec := call(t, s, http.MethodGet, "/v1.51/exec/"+id+"/json", "")
	wantStatus(t, rec, http.StatusOK)
	got := decode[map[string]any](t, rec)
	if got["ID"] != id || got["ExitCode"] != 3.0 || got["Running"] != false {
		t.Errorf("exec inspect = %v, want ID %s and ExitCode 3", got, id)
	}
}

func TestExecHijackTTY(t *testing.T) {
	f := newFakeBackend()
	id := createExec(t, f, ExecConfig{Cmd: []string{"sh"}, Tty: true, AttachStdin: true, AttachStdout: true, AttachStderr: true})
	var gotStderr bool
	f.startExec = func(_ context.Context, _ string, _ bool, s Streams) error {
		gotStderr = s.Stderr != nil
		b := make([]byte, 2)
		if _, err := io.ReadFull(s.Stdin, b); err != nil {
			return err
		}
		_, err := fmt.Fprintf(s.Stdout, "tty:%s\r\n", b)
		return err
	}
	sock := serveUnix(t, newServer(f))
	rs := hijackRequest(t, sock, "/v1.51/exec/"+id+"/start", `{"Detach":false,"Tty":true,"ConsoleSize":[24,80]}`, true)
	rs.wantHead(t, "HTTP/1.1 101 UPGRADED", mediaRawStream)
	if _, err := io.WriteString(rs.conn, "ls"); err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(rs.r)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("tty:ls\r\n", string(out)); diff != "" {
		t.Errorf("raw output (-want +got):\n%s", diff)
	}
	if gotStderr {
		t.Error("a tty exec got a separate Stderr")
	}
}

// TestExecHijackLegacy: without an Upgrade header moby answers 200 OK with
// a raw stream; before API 1.42 the type is raw even though frames are
// multiplexed (the client ignores the type then).
func TestExecHijackLegacy(t *testing.T) {
	for _, tt := range []struct {
		name, path  string
		upgrade     bool
		status, typ string
	}{
		{"no upgrade header", "/v1.51/exec/%s/start", false, "HTTP/1.1 200 OK", mediaRawStream},
		{"API 1.41", "/v1.41/exec/%s/start", true, "HTTP/1.1 101 UPGRADED", mediaRawStream},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeBackend()
			id := createExec(t, f, ExecConfig{Cmd: []string{"echo"}, AttachStdout: true})
			f.startExec = func(_ context.Context, _ string, _ bool, s Streams) error {
				if s.Stdin != nil || s.Stderr != nil {
					t.Errorf("unattached streams given: %+v", s)
				}
				_, err := io.WriteString(s.Stdout, "hi\n")
				return err
			}
			sock := serveUnix(t, newServer(f))
			rs := hijackRequest(t, sock, fmt.Sprintf(tt.path, id), `{"Tty":false}`, tt.upgrade)
			rs.wantHead(t, tt.status, tt.typ)
			var stdout, stderr bytes.Buffer
			if _, err := stdcopy.StdCopy(&stdout, &stderr, rs.r); err != nil {
				t.Fatal(err)
			}
			if stdout.String() != "hi\n" {
				t.Errorf("stdout = %q", stdout.String())
			}
		})
	}
}

func TestExecStartErrors(t *testing.T) {
	f := newFakeBackend()
	s := newServer(f)
	wantError(t, call(t, s, http.MethodPost, "/v1.51/exec/nope/start", `{"Detach":false}`, "Connection", "Upgrade", "Upgrade", "tcp"),
		http.StatusNotFound, "No such exec instance: nope")
	id := createExec(t, f, ExecConfig{Cmd: []string{"sleep", "1"}})
	wantStatus(t, call(t, s, http.MethodPost, "/v1.51/exec/"+id+"/start", `{"Detach":true}`), http.StatusOK)
	if diff := cmp.Diff([]string{"CreateExec test1", "StartExec " + id + " true"}, f.Mutations()); diff != "" {
		t.Errorf("mutations (-want +got):\n%s", diff)
	}
	wantStatus(t, call(t, s, http.MethodPost, "/v1.51/exec/"+id+"/resize?h=10&w=20", ""), http.StatusOK)
}

func TestExecStartReportsBackendError(t *testing.T) {
	f := newFakeBackend()
	id := createExec(t, f, ExecConfig{Cmd: []string{"nope"}, AttachStdout: true, AttachStderr: true})
	f.startExec = func(context.Context, string, bool, Streams) error {
		return fmt.Errorf("exec: \"nope\": executable file not found in $PATH")
	}
	rs := hijackRequest(t, serveUnix(t, newServer(f)), "/v1.51/exec/"+id+"/start", `{}`, true)
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, rs.r); err != nil {
		t.Fatal(err)
	}
	// On stdout, as moby's postContainerExecStart writes it.
	if !strings.Contains(stdout.String(), "executable file not found") || stderr.Len() != 0 {
		t.Errorf("stdout = %q, stderr = %q; want the backend's error on stdout", stdout.String(), stderr.String())
	}
}

func TestExecCreate(t *testing.T) {
	f := newFakeBackend()
	s := newServer(f)
	body := `{"User":"nobody","Tty":true,"ConsoleSize":[24,80],"AttachStdin":true,"AttachStdout":true,"Env":["A=1"],"WorkingDir":"/tmp","Cmd":["sh"]}`
	rec := call(t, s, http.MethodPost, "/v1.51/containers/test1/exec", body)
	wantStatus(t, rec, http.StatusCreated)
	id := decode[map[string]string](t, rec)["Id"]
	info, err := f.InspectExec(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	want := ExecConfig{Cmd: []string{"sh"}, Env: []string{"A=1"}, User: "nobody", WorkingDir: "/tmp", Tty: true,
		AttachStdin: true, AttachStdout: true, ConsoleSize: [2]uint{24, 80}}
	if diff := cmp.Diff(want, info.Config); diff != "" {
		t.Errorf("ExecConfig (-want +got):\n%s", diff)
	}
	rec = call(t, s, http.MethodGet, "/v1.51/exec/"+id+"/json", "")
	got := decode[map[string]any](t, rec)
	if _, ok := got["ExitCode"]; !ok || got["ExitCode"] != nil {
		t.Errorf("ExitCode = %v, want null before the process ran", got["ExitCode"])
	}
	f.containers[0].State.Status = container.StatusExited
	wantError(t, call(t, s, http.MethodPost, "/v1.51/containers/test1/exec", `{"Cmd":["sh"]}`), http.StatusConflict,
		"container "+hexID("4fea95f2e979")+" is not running")
}

func TestAttachHijack(t *testing.T) {
	f := newFakeBackend()
	var gotRef string
	f.attach = func(_ context.Context, ref string, s Streams) error {
		gotRef = ref
		in, err := io.ReadAll(s.Stdin)
		if err != nil {
			return err
		}
		fmt.Fprintf(s.Stdout, "echo %s", in)
		fmt.Fprint(s.Stderr, "warn")
		return nil
	}
	sock := serveUnix(t, newServer(f))
	rs := hijackRequest(t, sock, "/v1.51/containers/test1/attach?stream=1&stdin=1&stdout=1&stderr=1", "", true)
	rs.wantHead(t, "HTTP/1.1 101 UPGRADED", mediaMultiplexedStream)
	if _, err := io.WriteString(rs.conn, "abc"); err != nil {
		t.Fatal(err)
	}
	if err := rs.conn.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, rs.r); err != nil {
		t.Fatal(err)
	}
	if stdout.String() != "echo abc" || stderr.String() != "warn" {
		t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}
	if gotRef != hexID("4fea95f2e979") {
		t.Errorf("attached to %q, want the container's ID", gotRef)
	}
}

// TestAttachUnreadStdinEndsWithEOF: stdin the client sent and the
// container never read (a short `docker run -i` of a command that reads
// nothing) does not reset the client: after the output it reads EOF, as
// from Docker, not ECONNRESET (which the docker CLI turns into exit 1).
func TestAttachUnreadStdinEndsWithEOF(t *testing.T) {
	f := newFakeBackend()
	sent := make(chan struct{})
	f.attach = func(_ context.Context, _ string, s Streams) error {
		<-sent // stdin is in the socket, unread
		_, err := io.WriteString(s.Stdout, "done")
		return err
	}
	rs := hijackRequest(t, serveUnix(t, newServer(f)), "/v1.51/containers/test1/attach?stream=1&stdin=1&stdout=1&stderr=1", "", true)
	rs.wantHead(t, "HTTP/1.1 101 UPGRADED", mediaMultiplexedStream)
	if _, err := io.WriteString(rs.conn, "hello\n"); err != nil {
		t.Fatal(err)
	}
	close(sent)
	// Read once the server has had time to finish: the reset, if any,
	// comes with its close.
	time.Sleep(200 * time.Millisecond)
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, rs.r); err != nil {
		t.Fatalf("after the output: %v, want EOF", err)
	}
	if stdout.String() != "done" {
		t.Errorf("stdout %q", stdout.String())
	}
}

// TestAttachDrainBesideTheStdinCopier: the drain reads what the stdin
// copier of the stream would (the daemon's feedStdin keeps reading after
// the container ended), one read at a time (go test -race found the two
// in serveConn's bufio.Reader at once).
func TestAttachDrainBesideTheStdinCopier(t *testing.T) {
	f := newFakeBackend()
	sent := make(chan struct{})
	f.attach = func(_ context.Context, _ string, s Streams) error {
		go func() { _, _ = io.Copy(io.Discard, s.Stdin) }()
		<-sent
		_, err := io.WriteString(s.Stdout, "done")
		return err
	}
	rs := hijackRequest(t, serveUnix(t, newServer(f)), "/v1.51/containers/test1/attach?stream=1&stdin=1&stdout=1&stderr=1", "", true)
	rs.wantHead(t, "HTTP/1.1 101 UPGRADED", mediaMultiplexedStream)
	for range 50 {
		if _, err := io.WriteString(rs.conn, "a line of stdin\n"); err != nil {
			t.Fatal(err)
		}
	}
	close(sent)
	go func() { // more while the stream ends
		for range 50 {
			if _, err := io.WriteString(rs.conn, "more\n"); err != nil {
				return
			}
		}
		_ = rs.conn.CloseWrite()
	}()
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, rs.r); err != nil {
		t.Fatalf("after the output: %v, want EOF", err)
	}
	if stdout.String() != "done" {
		t.Errorf("stdout %q", stdout.String())
	}
}

func TestAttachTTYAndLogs(t *testing.T) {
	f := newFakeBackend()
	f.containers[0].Config.Tty = true
	f.logs = func(_ context.Context, _ string, o LogsOptions, stdout, _ io.Writer) error {
		_, err := io.WriteString(stdout, "old;")
		return err
	}
	f.attach = func(_ context.Context, _ string, s Streams) error {
		if s.Stderr != nil || s.Stdin != nil {
			t.Errorf("tty attach without stdin got %+v", s)
		}
		_, err := io.WriteString(s.Stdout, "new")
		return err
	}
	rs := hijackRequest(t, serveUnix(t, newServer(f)), "/v1.51/containers/test1/attach?logs=1&stream=1&stdout=1&stderr=1", "", true)
	rs.wantHead(t, "HTTP/1.1 101 UPGRADED", mediaRawStream)
	out, err := io.ReadAll(rs.r)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "old;new" {
		t.Errorf("output = %q", out)
	}
}

func TestAttachNotFound(t *testing.T) {
	wantError(t, call(t, newServer(newFakeBackend()), http.MethodPost, "/v1.51/containers/nope/attach?stream=1", "", "Connection", "Upgrade", "Upgrade", "tcp"),
		http.StatusNotFound, "No such container: nope")
}

// TestShutdownClosesStreams: a daemon stopping must not hang on an attach.
func TestShutdownClosesStreams(t *testing.T) {
	f := newFakeBackend()
	started, returned := make(chan struct{}), make(chan struct{})
	f.attach = func(ctx context.Context, _ string, s Streams) error {
		close(started)
		<-ctx.Done()
		close(returned)
		return ctx.Err()
	}
	s := newServer(f)
	sock := serveUnix(t, s)
	rs := hijackRequest(t, sock, "/v1.51/containers/test1/attach?stream=1&stdout=1", "", true)
	<-started
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-returned // the attach's context was cancelled
	if _, err := io.ReadAll(rs.r); err != nil {
		t.Fatalf("read after shutdown: %v", err)
	}
}

// TestHijackKeepsEarlyStdin: bytes the client sent right behind the
// request, which net/http may already have buffered, still reach stdin.
func TestHijackKeepsEarlyStdin(t *testing.T) {
	f := newFakeBackend()
	id := createExec(t, f, ExecConfig{Cmd: []string{"cat"}, AttachStdin: true, AttachStdout: true})
	f.startExec = func(_ context.Context, _ string, _ bool, s Streams) error {
		in, err := io.ReadAll(s.Stdin)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(s.Stdout, "%s", in)
		return err
	}
	sock := serveUnix(t, newServer(f))
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"Tty":false}`
	req := fmt.Sprintf("POST /v1.51/exec/%s/start HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n%searly;", id, len(body), body)
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	tp := textproto.NewReader(r)
	if status, err := tp.ReadLine(); err != nil || status != "HTTP/1.1 101 UPGRADED" {
		t.Fatalf("status %q, %v", status, err)
	}
	if _, err := tp.ReadMIMEHeader(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, "late"); err != nil {
		t.Fatal(err)
	}
	if err := conn.(*net.UnixConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, r); err != nil {
		t.Fatal(err)
	}
	if stdout.String() != "early;late" {
		t.Errorf("stdin reached the exec as %q, want \"early;late\"", stdout.String())
	}
}

// TestAttachEndsWhenTheClientGoes: an attach to a container that prints
// nothing ends once its client has closed the connection (moby's
// notifyClosed), while a client that only half-closes (the docker CLI
// with no stdin left to send) stays attached.
func TestAttachEndsWhenTheClientGoes(t *testing.T) {
	f := newFakeBackend()
	started, returned := make(chan struct{}, 2), make(chan struct{}, 2)
	f.attach = func(ctx context.Context, _ string, s Streams) error {
		started <- struct{}{}
		<-ctx.Done()
		returned <- struct{}{}
		return ctx.Err()
	}
	sock := serveUnix(t, newServer(f))

	half := hijackRequest(t, sock, "/v1.51/containers/test1/attach?stream=1&stdout=1&stderr=1", "", true)
	<-started
	if err := half.conn.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-returned:
		t.Fatal("a half-close of the client ended its attach")
	case <-time.After(300 * time.Millisecond):
	}

	gone := hijackRequest(t, sock, "/v1.51/containers/test1/attach?stream=1&stdout=1&stderr=1", "", true)
	<-started
	gone.conn.Close()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("the attach of a client that closed its connection still runs")
	}
	half.conn.Close()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("the half-closed client's attach still runs after it closed too")
	}
}
