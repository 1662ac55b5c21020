package runtime

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/nstest"
)

// TestReaperCopiesOutputWhileNoDaemon: a container's output goes through
// the reaper into its json log, so what it prints while no daemon runs
// is kept with its time, and Wait returns only once the last of it is in
// the log (docker run's attach reads the log right after the exit).
func TestReaperCopiesOutputWhileNoDaemon(t *testing.T) {
	rt := newTestRuntime(t)
	s := busyboxSpec(t, "sh", "-c", "echo before; read line; echo while-away; echo err-away >&2; i=0; while [ $i -lt 2000 ]; do echo line $i; i=$((i+1)); done")
	s.OpenStdin = true
	s.Log = LogLimit{MaxSize: 20_000, MaxFiles: 100}
	p := start(t, rt, s)
	w, err := rt.WriteStdin(s.ID)
	if err != nil {
		t.Fatal(err)
	}
	rt.Close() // the daemon dies: the reaper keeps the pipes
	w.Write([]byte("go\n"))
	w.Close()
	again := againAfterExit(t, rt, p)
	if code, err := again.Wait(context.Background(), s.ID, p); err != nil || code != 0 {
		t.Fatalf("Wait = %d, %v", code, err)
	}
	var out, errb bytes.Buffer
	if err := again.Logs(context.Background(), s.ID, &out, &errb, LogOptions{Tail: -1, Timestamps: true}, nil); err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(got) != 2002 || !strings.HasSuffix(got[1], " while-away") || !strings.HasSuffix(got[2001], " line 1999") {
		t.Fatalf("stdout has %d lines (%q … %q), want before, while-away and 2,000 more", len(got), got[0], got[len(got)-1])
	}
	stamp, _, _ := strings.Cut(errb.String(), " ")
	if at, err := time.Parse(time.RFC3339Nano, stamp); err != nil || time.Since(at) > time.Minute || !strings.HasSuffix(errb.String(), " err-away\n") {
		t.Errorf("stderr %q: want err-away stamped with its time", errb.String())
	}
	if fi, err := os.Stat(again.JSONLogPath(s.ID)); err != nil || fi.Size() > 20_000+200 {
		t.Errorf("live log: %v, %v; want at most max-size and an entry", fi, err)
	}
}

// TestLegacyLogsReadAndConverted: a container whose output an older berth
// wrote to stdout.log and stderr.log (raw, no times) is read as before,
// refuses times, and its next start moves the lines into the json log
// stamped with the files' times, before its new output.
func TestLegacyLogsReadAndConverted(t *testing.T) {
	rt := newTestRuntime(t)
	s := busyboxSpec(t, "sh", "-c", "echo new; exec sleep 1000")
	if err := os.MkdirAll(rt.dataDir(s.ID), 0o711); err != nil {
		t.Fatal(err)
	}
	outPath, errPath := rt.LogPaths(s.ID)
	old := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for p, text := range map[string]string{outPath: "old 1\nold 2\n", rotated(outPath, 1): "older\n", errPath: "old err\n"} {
		if err := os.WriteFile(p, []byte(text), 0o640); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, old, old)
	}
	var out, errb bytes.Buffer
	if err := rt.Logs(context.Background(), s.ID, &out, &errb, LogOptions{Tail: -1}, nil); err != nil || out.String() != "older\nold 1\nold 2\n" || errb.String() != "old err\n" {
		t.Errorf("legacy logs: %q / %q, %v", out.String(), errb.String(), err)
	}
	if err := rt.Logs(context.Background(), s.ID, &out, nil, LogOptions{Tail: -1, Timestamps: true}, nil); !errdefs.Is(err, errdefs.KindNotImplemented) || !errdefs.Is(rt.CheckLogOptions(s.ID, LogOptions{Since: old}), errdefs.KindNotImplemented) {
		t.Errorf("legacy logs with -t: %v (check %v), want NotImplemented", err, rt.CheckLogOptions(s.ID, LogOptions{Since: old}))
	}

	p := start(t, rt, s)
	for _, f := range []string{outPath, rotated(outPath, 1), errPath} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s is still there after the start", f)
		}
	}
	var got string
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		out.Reset()
		errb.Reset()
		if err := rt.Logs(context.Background(), s.ID, &out, &errb, LogOptions{Tail: -1, Timestamps: true}, nil); err != nil {
			t.Fatal(err)
		}
		if got = out.String(); strings.HasSuffix(got, " new\n") || time.Now().After(deadline) {
			break
		}
	}
	want := "2026-01-02T03:04:05.000000000Z older\n2026-01-02T03:04:05.000000000Z old 1\n2026-01-02T03:04:05.000000000Z old 2\n"
	if !strings.HasPrefix(got, want) || strings.Count(got, "\n") != 4 || errb.String() != "2026-01-02T03:04:05.000000000Z old err\n" {
		t.Errorf("after the start: %q / %q, want the old lines stamped with their files' time, then the new", got, errb.String())
	}
	if err := rt.Signal(s.ID, p, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

// reaperPID finds the reaper of rt's directory.
func reaperPID(t *testing.T, rt *Runtime) int {
	t.Helper()
	want := reaperArg0 + "\x00" + rt.cfg.ReaperDir + "\x00"
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && string(b) == want {
			return pid
		}
	}
	t.Fatalf("no reaper for %s", rt.cfg.ReaperDir)
	return 0
}

// TestContainerOutlivesItsReaper: the daemon holds copies of the read
// ends of a container's output pipes, so a reaper that dies (killed, or
// out of memory) does not make the container's next write a SIGPIPE; a
// new reaper takes the pipes and the output goes on into the log. A
// restarted daemon takes its copies from the reaper it finds.
func TestContainerOutlivesItsReaper(t *testing.T) {
	for _, restart := range []bool{false, true} {
		rt := newTestRuntime(t)
		s := busyboxSpec(t, "sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); usleep 20000; done")
		p := start(t, rt, s)
		if restart {
			rt.Close()
			again, err := New(rt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(again.Close)
			rt = again
			if err := rt.reaper.ensure(); err != nil {
				t.Fatal(err)
			}
			if !rt.OutputKept(s.ID) {
				t.Error("a restarted daemon does not hold the pipes its reaper copies")
			}
		}
		ticks := func() int {
			var out bytes.Buffer
			rt.Logs(context.Background(), s.ID, &out, nil, LogOptions{Tail: -1}, nil)
			return strings.Count(out.String(), "tick ")
		}
		// An attached client goes on with the new reaper too.
		var attached nstest.SyncBuffer
		stream, err := rt.AttachOutput(s.ID, false, false, &attached, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		streamed := make(chan error, 1)
		go func() { streamed <- stream(ctx, nil, nil) }()
		time.Sleep(200 * time.Millisecond)
		old := reaperPID(t, rt)
		if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		before, attachedBefore := ticks(), strings.Count(attached.String(), "tick ")
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if !rt.Alive(p) {
				t.Fatalf("restart %v: the container died with its reaper", restart)
			}
			if ticks() > before+10 && strings.Count(attached.String(), "tick ") > attachedBefore+10 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("restart %v: %d ticks in the log, %d attached, after the reaper was killed (%d, %d before)",
					restart, ticks(), strings.Count(attached.String(), "tick "), before, attachedBefore)
			}
		}
		cancel()
		<-streamed
		if now := reaperPID(t, rt); now == old {
			t.Errorf("restart %v: no new reaper", restart)
		}
		if err := rt.Signal(s.ID, p, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAttachOutputIsRaw: an attachment made before the start sees the
// run's output from its first byte, as the container wrote it: a prompt
// without its newline at once (the log holds it until the line ends),
// and every line of a burst that the log rotates away faster than a
// follower could read it (QA round 28). For a tty container too.
func TestAttachOutputIsRaw(t *testing.T) {
	for _, tty := range []bool{false, true} {
		rt := newTestRuntime(t)
		// The line ends only once the test has seen the prompt (and made
		// /tmp/go): no timing decides what the test sees.
		s := busyboxSpec(t, "sh", "-c", "printf 'Name: '; until [ -e /tmp/go ]; do sleep 0.05; done; seq 1 50000; echo err >&2")
		s.Tty = tty
		s.Log = LogLimit{MaxSize: 2000, MaxFiles: 1}
		var out, errb nstest.SyncBuffer
		stream, err := rt.AttachOutput(s.ID, tty, true, &out, &errb)
		if err != nil {
			t.Fatal(err)
		}
		streamed := make(chan error, 1)
		go func() { streamed <- stream(context.Background(), nil, nil) }()
		p := start(t, rt, s)
		// A guard against a hang, not a timing: the line cannot end before
		// the prompt is seen.
		for deadline := time.Now().Add(time.Minute); !strings.HasPrefix(out.String(), "Name: "); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("tty %v: the prompt, without its line's end, was not attached: %q", tty, out.String())
			}
		}
		if code, err := rt.Exec(context.Background(), s.ID, ExecSpec{Args: []string{"touch", "/tmp/go"}}); err != nil || code != 0 {
			t.Fatalf("touch /tmp/go: %d, %v", code, err)
		}
		if code, err := rt.Wait(context.Background(), s.ID, p); err != nil || code != 0 {
			t.Fatalf("Wait = %d, %v", code, err)
		}
		select {
		case err := <-streamed:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("tty %v: the attachment did not end with the run", tty)
		}
		got := strings.ReplaceAll(out.String(), "\r\n", "\n")
		if want := "Name: " + seqLines(50000); !strings.HasPrefix(got, want) {
			t.Errorf("tty %v: attached %d bytes, want the prompt and all 50,000 lines (%d bytes)", tty, len(got), len(want))
		}
		if !tty && errb.String() != "err\n" {
			t.Errorf("attached stderr %q", errb.String())
		}
	}
}

func seqLines(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		b.WriteString(strconv.Itoa(i))
		b.WriteByte('\n')
	}
	return b.String()
}

// TestOutputLostWithDaemonAndReaper: when the daemon and the reaper both
// die, nothing holds a container's pipes any more; the next daemon says
// so (OutputKept false, a warning at restore) rather than pretending.
func TestOutputLostWithDaemonAndReaper(t *testing.T) {
	rt := newTestRuntime(t)
	s := busyboxSpec(t, "sh", "-c", "trap '' PIPE; while true; do echo tick; usleep 20000; done")
	p := start(t, rt, s)
	pid := reaperPID(t, rt)
	rt.Close()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	again, err := New(rt.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(again.Close)
	if again.OutputKept(s.ID) {
		t.Error("OutputKept = true for a container whose daemon and reaper both died")
	}
	again.Signal(s.ID, p, syscall.SIGKILL)
}

// TestAttachToARunAlreadyOver: an attachment made for a run that turns
// out to be over (its output copied before the client came; the daemon
// had not seen the exit yet) ends with the exit, instead of waiting for
// a next run (the third review).
func TestAttachToARunAlreadyOver(t *testing.T) {
	rt := newTestRuntime(t)
	for _, tty := range []bool{false, true} {
		s := busyboxSpec(t, "echo", "hi")
		s.Tty = tty
		p := start(t, rt, s)
		if _, err := rt.Wait(context.Background(), s.ID, p); err != nil {
			t.Fatal(err)
		}
		stream, err := rt.AttachOutput(s.ID, tty, false, io.Discard, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		closed := make(chan struct{})
		close(closed)
		ended := make(chan error, 1)
		go func() { ended <- stream(context.Background(), closed, closed) }()
		select {
		case <-ended:
		case <-time.After(5 * time.Second):
			t.Fatalf("tty %v: the attachment to a run already over did not end with its exit", tty)
		}
	}
}

// TestExitCodeAfterItsReaperDied: a container whose reaper was killed
// while the daemon ran comes to the daemon (a child subreaper), and its
// exit code is its own, not the 255 of a code nobody collected.
func TestExitCodeAfterItsReaperDied(t *testing.T) {
	rt := newTestRuntime(t)
	s := busyboxSpec(t, "sh", "-c", "while [ ! -e /tmp/stop ]; do usleep 20000; done; exit 7")
	p := start(t, rt, s)
	if err := syscall.Kill(reaperPID(t, rt), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the container is re-parented
	if err := os.WriteFile(filepath.Join(rt.rootfs(s.ID), "tmp", "stop"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code, err := rt.Wait(ctx, s.ID, p)
	if err != nil || code != 7 {
		t.Errorf("Wait after the reaper died: %d, %v; want the container's 7", code, err)
	}
}
