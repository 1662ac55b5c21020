package runtime

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/errdefs"
)

// running starts a container that just sleeps, for exec tests.
func running(t *testing.T, rt *Runtime) Spec {
	t.Helper()
	s := busyboxSpec(t, "sleep", "1000")
	s.Env = []string{"FROM_CONTAINER=yes", "OVERRIDDEN=container"}
	start(t, rt, s)
	return s
}

func TestExecOutputAndExitCode(t *testing.T) {
	rt := newTestRuntime(t)
	s := running(t, rt)
	var out, errb bytes.Buffer
	started := 0
	code, err := rt.Exec(context.Background(), s.ID, ExecSpec{
		Args:    []string{"sh", "-c", "echo hi; echo $FROM_CONTAINER $OVERRIDDEN $HOSTNAME; pwd; echo oops >&2; exit 3"},
		BaseEnv: s.Env, // the container's
		Env:     []string{"OVERRIDDEN=exec"},
		Cwd:     "/tmp",
		Stdout:  &out,
		Stderr:  &errb,
		OnStart: func(pid int, resize func(h, w uint) error) { started = pid },
	})
	if err != nil || code != 3 {
		t.Fatalf("Exec = %d, %v; want 3", code, err)
	}
	if want := "hi\nyes exec box\n/tmp\n"; out.String() != want {
		t.Errorf("stdout %q, want %q", out.String(), want)
	}
	if errb.String() != "oops\n" {
		t.Errorf("stderr %q, want \"oops\\n\"", errb.String())
	}
	if started <= 0 {
		t.Errorf("OnStart got pid %d", started)
	}
}

func TestExecStdinUntilEOF(t *testing.T) {
	rt := newTestRuntime(t)
	s := running(t, rt)
	var out bytes.Buffer
	// After stdin's EOF the process still writes: output outlives input.
	code, err := rt.Exec(context.Background(), s.ID, ExecSpec{
		Args:   []string{"sh", "-c", "cat; echo after-eof"},
		Stdin:  strings.NewReader("hello\nworld\n"),
		Stdout: &out,
	})
	if err != nil || code != 0 {
		t.Fatalf("Exec = %d, %v; want 0", code, err)
	}
	if want := "hello\nworld\nafter-eof\n"; out.String() != want {
		t.Errorf("stdout %q, want %q", out.String(), want)
	}
}

func TestExecTty(t *testing.T) {
	rt := newTestRuntime(t)
	s := running(t, rt)
	var out bytes.Buffer
	var resized error
	code, err := rt.Exec(context.Background(), s.ID, ExecSpec{
		Args:        []string{"sh", "-c", "tty; stty size; echo $TERM"},
		Tty:         true,
		ConsoleSize: [2]uint{24, 80},
		Stdout:      &out,
		OnStart:     func(pid int, resize func(h, w uint) error) { resized = resize(24, 80) },
	})
	if err != nil || code != 0 {
		t.Fatalf("Exec = %d, %v; want 0", code, err)
	}
	if resized != nil {
		t.Errorf("resize: %v", resized)
	}
	// A terminal turns "\n" into "\r\n".
	if want := "/dev/pts/0\r\n24 80\r\nxterm\r\n"; out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
}

func TestExecUser(t *testing.T) {
	rt := newTestRuntime(t)
	s := running(t, rt)
	for user, want := range map[string]string{
		"":             "uid=0(root) gid=0(root) groups=0(root)",
		"www-data":     "uid=33(www-data) gid=33(www-data) groups=33(www-data),100(users)",
		"33:nogroup":   "uid=33(www-data) gid=65534(nogroup) groups=100(users),65534(nogroup)",
		"1234:5678":    "uid=1234 gid=5678 groups=5678",
		"nobody:users": "uid=65534(nobody) gid=100(users) groups=100(users)",
	} {
		var out bytes.Buffer
		code, err := rt.Exec(context.Background(), s.ID, ExecSpec{Args: []string{"id"}, User: user, Stdout: &out})
		if err != nil || code != 0 || strings.TrimSpace(out.String()) != want {
			t.Errorf("id as %q = %q, %d, %v; want %q", user, out.String(), code, err, want)
		}
	}
}

func TestExecFailures(t *testing.T) {
	rt := newTestRuntime(t)
	s := running(t, rt)
	for _, tc := range []struct {
		name string
		id   string
		e    ExecSpec
		code int
		kind errdefs.Kind
	}{
		{"not found", s.ID, ExecSpec{Args: []string{"nosuch"}}, 127, errdefs.KindUnknown},
		{"not executable", s.ID, ExecSpec{Args: []string{"/etc/passwd"}}, 126, errdefs.KindUnknown},
		// moby's setExitCodeFromError: ENOTDIR is 127 (exec -w /etc/passwd).
		{"cwd a file", s.ID, ExecSpec{Args: []string{"true"}, Cwd: "/etc/passwd"}, 127, errdefs.KindUnknown},
		{"no command", s.ID, ExecSpec{}, -1, errdefs.KindInvalid},
		{"relative cwd", s.ID, ExecSpec{Args: []string{"true"}, Cwd: "tmp"}, -1, errdefs.KindInvalid},
		{"unknown user", s.ID, ExecSpec{Args: []string{"true"}, User: "nosuchuser"}, -1, errdefs.KindInvalid},
		{"not running", "nosuchcontainer", ExecSpec{Args: []string{"true"}}, -1, errdefs.KindConflict},
		{"bad id", "../x", ExecSpec{Args: []string{"true"}}, -1, errdefs.KindInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, err := rt.Exec(context.Background(), tc.id, tc.e)
			if err == nil || code != tc.code || errdefs.KindOf(err) != tc.kind {
				t.Errorf("Exec = %d, %v (kind %v); want %d and an error of kind %v", code, err, errdefs.KindOf(err), tc.code, tc.kind)
			}
		})
	}
}

func TestExecReturnsWhenContextEnds(t *testing.T) {
	rt := newTestRuntime(t)
	s := running(t, rt)
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	code, err := rt.Exec(ctx, s.ID, ExecSpec{
		Args:    []string{"sleep", "1000"},
		Stdout:  &out,
		OnStart: func(int, func(h, w uint) error) { cancel() },
	})
	if err != context.Canceled || code != -1 {
		t.Errorf("Exec = %d, %v; want -1, context.Canceled", code, err)
	}
}
