package runtime

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/nstest"
)

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestStartInNetnsThenKill(t *testing.T) {
	rt := newTestRuntime(t)
	s := busyboxSpec(t, "sh", "-c", "echo out; echo err >&2; exec sleep 1000")
	p := start(t, rt, s)

	if got, want := inode(t, filepath.Join("/proc", itoa(p.Pid), "ns/net")), inode(t, s.NetNSPath); got != want {
		t.Errorf("container netns inode %d, want the sandbox's %d", got, want)
	}
	if !rt.Alive(p) {
		t.Error("Alive = false for a running container")
	}
	// The container keeps running: read the logs until both lines are there.
	var out, errb bytes.Buffer
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		out.Reset()
		errb.Reset()
		if err := rt.Logs(context.Background(), s.ID, &out, &errb, LogOptions{Tail: -1}, nil); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out.String(), "out") && strings.Contains(errb.String(), "err") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs a minute after the start: stdout %q stderr %q, want both lines", out.String(), errb.String())
		}
	}
	if out.String() != "out\n" || errb.String() != "err\n" {
		t.Errorf("logs: stdout %q stderr %q, want \"out\\n\" and \"err\\n\"", out.String(), errb.String())
	}

	if err := rt.Signal(s.ID, p, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	code, err := rt.Wait(context.Background(), s.ID, p)
	if err != nil || code != 137 {
		t.Errorf("Wait = %d, %v; want 137", code, err)
	}
	if rt.Alive(p) {
		t.Error("Alive = true after the process was reaped")
	}
	if err := rt.Signal(s.ID, p, syscall.SIGKILL); err != nil {
		t.Errorf("Signal to a gone process: %v", err)
	}
	for i := range 2 {
		if err := rt.Delete(s.ID); err != nil {
			t.Errorf("Delete #%d: %v", i+1, err)
		}
	}
	if m := mounted(t, rt.cfg.BundleDir); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
	for _, d := range []string{rt.bundle(s.ID), rt.dataDir(s.ID), filepath.Join(rt.cfg.StateDir, s.ID)} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s still there: %v", d, err)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// runToEnd starts s, waits for it to exit and returns its exit code and logs.
func runToEnd(t *testing.T, rt *Runtime, s Spec) (int, string, string) {
	t.Helper()
	p := start(t, rt, s)
	code, err := rt.Wait(context.Background(), s.ID, p)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	var out, errb bytes.Buffer
	if err := rt.Logs(context.Background(), s.ID, &out, &errb, LogOptions{Tail: -1}, nil); err != nil {
		t.Fatalf("Logs: %v", err)
	}
	return code, out.String(), errb.String()
}

func TestExitCodeOfItsOwn(t *testing.T) {
	rt := newTestRuntime(t)
	code, _, _ := runToEnd(t, rt, busyboxSpec(t, "sh", "-c", "exit 7"))
	if code != 7 {
		t.Errorf("Wait = %d, want 7", code)
	}
}

func TestFilesAreBindMounted(t *testing.T) {
	rt := newTestRuntime(t)
	hostname := filepath.Join(t.TempDir(), "hostname")
	if err := os.WriteFile(hostname, []byte("from-the-host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := busyboxSpec(t, "sh", "-c", "cat /etc/hostname; hostname; echo $HOSTNAME $HOME $PATH")
	s.Files = map[string]string{"/etc/hostname": hostname}
	code, out, _ := runToEnd(t, rt, s)
	want := "from-the-host\nbox\nbox /root /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
	if code != 0 || out != want {
		t.Errorf("got %d, %q; want 0, %q", code, out, want)
	}
}

func TestTtyContainer(t *testing.T) {
	rt := newTestRuntime(t)
	s := busyboxSpec(t, "sh", "-c", "tty; echo $TERM")
	s.Tty = true
	code, out, _ := runToEnd(t, rt, s)
	if want := "/dev/pts/0\r\nxterm\r\n"; code != 0 || out != want {
		t.Errorf("got %d, %q; want 0, %q", code, out, want)
	}
}

func TestOpenStdinUntilReleased(t *testing.T) {
	rt := newTestRuntime(t)
	s := busyboxSpec(t, "cat")
	s.OpenStdin = true
	p := start(t, rt, s)
	w, err := rt.WriteStdin(s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("typed\n")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// The runtime still holds stdin open; letting go gives cat its EOF.
	if !rt.Alive(p) {
		t.Error("cat ended before stdin was released")
	}
	if err := rt.CloseStdin(s.ID); err != nil {
		t.Fatal(err)
	}
	code, err := rt.Wait(context.Background(), s.ID, p)
	if err != nil || code != 0 {
		t.Fatalf("Wait = %d, %v; want 0", code, err)
	}
	var out bytes.Buffer
	rt.Logs(context.Background(), s.ID, &out, nil, LogOptions{Tail: -1}, nil)
	if out.String() != "typed\n" {
		t.Errorf("stdout %q, want \"typed\\n\"", out.String())
	}
	if _, err := rt.WriteStdin(s.ID); err == nil {
		t.Error("WriteStdin after exit succeeded")
	}
}

// Attach for a foreground run follows the logs before the container starts
// and must see all of its output.
func TestLogsFollowFromBeforeStart(t *testing.T) {
	rt := newTestRuntime(t)
	s := busyboxSpec(t, "sh", "-c", "for i in 1 2 3; do echo out$i; echo err$i >&2; done")
	var out, errb bytes.Buffer
	exited := make(chan struct{})
	followed := make(chan error, 1)
	go func() {
		followed <- rt.Logs(context.Background(), s.ID, &out, &errb, LogOptions{Tail: -1, Follow: true}, exited)
	}()
	p := start(t, rt, s)
	if code, err := rt.Wait(context.Background(), s.ID, p); err != nil || code != 0 {
		t.Fatalf("Wait = %d, %v", code, err)
	}
	close(exited)
	if err := <-followed; err != nil {
		t.Fatal(err)
	}
	if out.String() != "out1\nout2\nout3\n" || errb.String() != "err1\nerr2\nerr3\n" {
		t.Errorf("stdout %q stderr %q", out.String(), errb.String())
	}
}

func TestLogsFollowEndsWithContext(t *testing.T) {
	rt := newTestRuntime(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := rt.Logs(ctx, "neverstarted", &bytes.Buffer{}, nil, LogOptions{Tail: -1, Follow: true}, nil); err != context.Canceled {
		t.Errorf("Logs = %v, want context.Canceled", err)
	}
}

func TestHostNetwork(t *testing.T) {
	rt := newTestRuntime(t)
	s := busyboxSpec(t, "sleep", "1000")
	s.NetNSPath = ""
	p := start(t, rt, s)
	// Not /proc/self/ns/net: that is the main thread's, and a test that
	// made a namespace on a locked thread may have left the main thread in it.
	probe := exec.Command("sleep", "1000")
	if err := probe.Start(); err != nil {
		t.Fatal(err)
	}
	defer probe.Wait()
	defer probe.Process.Kill()
	if got, want := inode(t, filepath.Join("/proc", itoa(p.Pid), "ns/net")), inode(t, filepath.Join("/proc", itoa(probe.Process.Pid), "ns/net")); got != want {
		t.Errorf("container netns inode %d, want the daemon's %d", got, want)
	}
}

func TestStartFailureLeavesNothing(t *testing.T) {
	rt := newTestRuntime(t)
	s := busyboxSpec(t, "/nosuch")
	err := startFails(t, rt, s)
	if err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Fatalf("Start = %v, want an error naming /nosuch", err)
	}
	if m := mounted(t, rt.cfg.BundleDir); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
	for _, d := range []string{rt.bundle(s.ID), rt.dataDir(s.ID), filepath.Join(rt.cfg.StateDir, s.ID)} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s still there: %v", d, err)
		}
	}
}

func TestStartRefusesBadSpecs(t *testing.T) {
	rt := newTestRuntime(t)
	good := busyboxSpec(t, "true")
	for _, tc := range []struct {
		name   string
		change func(*Spec)
	}{
		{"no id", func(s *Spec) { s.ID = "" }},
		{"id with slash", func(s *Spec) { s.ID = "a/b" }},
		{"dot-dot id", func(s *Spec) { s.ID = ".." }},
		{"no command", func(s *Spec) { s.Args = nil }},
		{"empty command", func(s *Spec) { s.Args = []string{""} }},
		{"relative cwd", func(s *Spec) { s.Cwd = "tmp" }},
		{"missing rootfs", func(s *Spec) { s.RootfsDir = "/nonexistent" }},
		{"relative file mount", func(s *Spec) { s.Files = map[string]string{"etc/hosts": "/tmp/x"} }},
		{"unknown user", func(s *Spec) { s.User = "nosuchuser" }},
		{"unknown group", func(s *Spec) { s.User = "root:nosuchgroup" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := good
			tc.change(&s)
			err := startFails(t, rt, s)
			if !errdefs.Is(err, errdefs.KindInvalid) {
				t.Errorf("Start = %v, want an Invalid error", err)
			}
			if m := mounted(t, rt.cfg.BundleDir); len(m) != 0 {
				t.Errorf("mounts left: %v", m)
			}
		})
	}
}

// Release keeps the upper layer and the logs: a restarted container sees
// its earlier changes, as docker start does.
func TestReleaseKeepsDataForRestart(t *testing.T) {
	rt := newTestRuntime(t)
	s := busyboxSpec(t, "sh", "-c", "echo again >> /persist; cat /persist")
	if code, out, _ := runToEnd(t, rt, s); code != 0 || out != "again\n" {
		t.Fatalf("first run: %d, %q", code, out)
	}
	if err := rt.Release(s.ID); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := runToEnd(t, rt, s); code != 0 || out != "again\nagain\nagain\n" {
		t.Errorf("second run: %d, %q; want the first run's log, then the file with two lines", code, out)
	}
	if _, err := os.Stat(filepath.Join(busyboxRootfs(t), "persist")); !os.IsNotExist(err) {
		t.Errorf("the image itself changed: %v", err)
	}
}

func TestStartTwiceIsConflict(t *testing.T) {
	rt := newTestRuntime(t)
	s := busyboxSpec(t, "sleep", "1000")
	p := start(t, rt, s)
	if _, err := rt.Start(context.Background(), s); !errdefs.Is(err, errdefs.KindConflict) {
		t.Errorf("second Start = %v, want a Conflict", err)
	}
	if !rt.Alive(p) {
		t.Error("the failed second Start stopped the running container")
	}
}

// TestReaperKeepsForTheNextDaemon: descriptors a stopping daemon leaves
// with the reaper (Keep, more than one message holds) the next daemon
// takes (Kept, in several answers too), each key's in order and still
// open; a second Kept has none: the reaper let go of them.
func TestReaperKeepsForTheNextDaemon(t *testing.T) {
	rt := newTestRuntime(t)
	start(t, rt, busyboxSpec(t, "sleep", "1000")) // the reaper's child: it stays
	// Two descriptors each: more than one message carries.
	const keys = keepBatch
	reads := map[string][2]*os.File{}
	fds := map[string][]int{}
	for i := range keys {
		key := fmt.Sprintf("%064x", i) // as long as a sandbox ID: more than one answer holds
		var ends [2]*os.File
		for j := range ends {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close(); w.Close() })
			ends[j] = r
			fds[key] = append(fds[key], int(w.Fd()))
		}
		reads[key] = ends
	}
	if err := rt.Keep(fds); err != nil {
		t.Fatal(err)
	}
	rt.Close() // the daemon stops: the reaper stays with the container

	again, err := New(rt.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(again.Close)
	kept, err := again.Kept()
	if err != nil || len(kept) != keys {
		t.Fatalf("Kept = %d keys, %v; want %d", len(kept), err, keys)
	}
	for key, got := range kept {
		if len(got) != 2 {
			t.Fatalf("%s: %d descriptors, want 2", key, len(got))
		}
		for j, fd := range got {
			msg := []byte(fmt.Sprintf("%s/%d", key, j))
			if _, err := unix.Write(fd, msg); err != nil {
				t.Fatalf("%s/%d: write to the kept descriptor: %v", key, j, err)
			}
			unix.Close(fd)
			buf := make([]byte, 128)
			n, err := reads[key][j].Read(buf)
			if err != nil || string(buf[:n]) != string(msg) {
				t.Errorf("%s/%d: the pipe read %q, %v; want %q (kept out of order?)", key, j, buf[:n], err, msg)
			}
		}
	}
	if again2, err := again.Kept(); err != nil || len(again2) != 0 {
		t.Errorf("a second Kept = %d keys, %v; want none", len(again2), err)
	}
}

// TestReaperLetsKeptGo: what no daemon takes within keepFor the reaper
// closes (a stopped daemon's resolver sockets must not hold a namespace
// forever): a pipe whose only write end it kept reads EOF then, not
// before, and a later Kept has nothing.
func TestReaperLetsKeptGo(t *testing.T) {
	rt := newTestRuntime(t)
	start(t, rt, busyboxSpec(t, "sleep", "1000")) // the reaper stays for it
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	kept := time.Now()
	if err := rt.Keep(map[string][]int{"sandbox": {int(w.Fd())}}); err != nil {
		t.Fatal(err)
	}
	w.Close() // the reaper's dup is the only write end left
	rt.Close()
	r.SetReadDeadline(time.Now().Add(keepFor + 10*time.Second))
	n, err := r.Read(make([]byte, 1))
	if waited := time.Since(kept); err != io.EOF || waited < keepFor-time.Second {
		t.Fatalf("read from the pipe = %d, %v after %v; want EOF after about %v", n, err, waited.Round(time.Millisecond), keepFor)
	}
	again, err := New(rt.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(again.Close)
	if got, err := again.Kept(); err != nil || len(got) != 0 {
		t.Errorf("Kept after keepFor = %v, %v; want nothing", got, err)
	}
}

// A restarted daemon has a new Runtime over the same directories: it must
// find the running container's logs, stdin, process and files.
func TestNewRuntimeAdoptsRunningContainer(t *testing.T) {
	rt := newTestRuntime(t)
	s := busyboxSpec(t, "sh", "-c", "echo before; read line; echo got $line; exec sleep 1000")
	s.OpenStdin = true
	p := start(t, rt, s)
	rt.Close() // as a daemon that died: the reaper stays with the container

	again, err := New(rt.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(again.Close)
	if !again.Alive(p) {
		t.Fatal("Alive = false in the new runtime")
	}
	w, err := again.WriteStdin(s.ID)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("line\n"))
	w.Close()
	var out bytes.Buffer
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		out.Reset()
		if err := again.Logs(context.Background(), s.ID, &out, nil, LogOptions{Tail: -1}, nil); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out.String(), "got line") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stdout a minute after the write: %q, want \"got line\"", out.String())
		}
	}
	if out.String() != "before\ngot line\n" {
		t.Errorf("stdout %q", out.String())
	}
	if err := again.Signal(s.ID, p, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code, err := again.Wait(context.Background(), s.ID, p); err != nil || code != 137 {
		t.Errorf("Wait = %d, %v; want 137 (from the reaper's record)", code, err)
	}
	if err := again.Delete(s.ID); err != nil {
		t.Fatal(err)
	}
	if m := mounted(t, rt.cfg.BundleDir); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
}

func TestStartFailureCode(t *testing.T) {
	rt := newTestRuntime(t)
	for args, want := range map[string]int{"/nosuch": 127, "nosuch": 127, "/etc/passwd": 126} {
		err := startFails(t, rt, busyboxSpec(t, args))
		if err == nil {
			t.Errorf("Start(%q) succeeded", args)
			continue
		}
		if got := StartFailureCode(err); got != want {
			t.Errorf("StartFailureCode(%v) = %d, want %d", err, got, want)
		}
	}
}

func TestTtyContainerResizeAndInput(t *testing.T) {
	rt := newTestRuntime(t)
	s := busyboxSpec(t, "sh", "-c", "read line; echo got $line; stty size")
	s.Tty, s.OpenStdin = true, true
	p := start(t, rt, s)
	if err := rt.Resize(s.ID, 30, 100); err != nil {
		t.Fatal(err)
	}
	w, err := rt.WriteStdin(s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if code, err := rt.Wait(context.Background(), s.ID, p); err != nil || code != 0 {
		t.Fatalf("Wait = %d, %v", code, err)
	}
	var out bytes.Buffer
	rt.Logs(context.Background(), s.ID, &out, nil, LogOptions{Tail: -1}, nil)
	// The terminal echoes the input line before the command's own output.
	if want := "hello\r\ngot hello\r\n30 100\r\n"; out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
	if err := rt.Resize("nosuch", 1, 1); !errdefs.Is(err, errdefs.KindConflict) {
		t.Errorf("Resize of an unknown container = %v, want a Conflict", err)
	}
}

// TestExitWhileNoRuntime is a container that ends while no daemon runs: the
// reaper records its code, and the next runtime learns it.
func TestExitWhileNoRuntime(t *testing.T) {
	rt := newTestRuntime(t)
	s := busyboxSpec(t, "sh", "-c", "read line; exit 3")
	s.OpenStdin = true
	p := start(t, rt, s)
	w, err := rt.WriteStdin(s.ID)
	if err != nil {
		t.Fatal(err)
	}
	rt.Close()
	w.Write([]byte("go\n"))
	w.Close()
	again := againAfterExit(t, rt, p)
	e, ok := again.LastExit(p)
	if !ok || e.Code != 3 || time.Since(e.At) > time.Minute {
		t.Fatalf("LastExit = %+v, %v; want code 3 just now", e, ok)
	}
	// Reading leaves the record: a daemon killed before it stored the
	// exit reads it again at its next start.
	if e, ok := again.LastExit(p); !ok || e.Code != 3 {
		t.Errorf("LastExit read again = %+v, %v; want the record still there", e, ok)
	}
	if code, err := again.Wait(context.Background(), s.ID, p); err != nil || code != 3 {
		t.Errorf("Wait with the record there = %d, %v; want 3", code, err)
	}
	again.ForgetExit(p)
	if _, ok := again.LastExit(p); ok {
		t.Error("the record is still there after ForgetExit")
	}
	if code, err := again.Wait(context.Background(), s.ID, p); err != nil || code != -1 {
		t.Errorf("Wait after the record was forgotten = %d, %v; want -1", code, err)
	}
}

// TestQuickExitCode is a command that ends before runc has returned: the
// reaper has reaped it by the time Start looks it up, and its code still
// arrives, for a container and for an exec.
func TestQuickExitCode(t *testing.T) {
	rt := newTestRuntime(t)
	for i := range 5 {
		s := busyboxSpec(t, "sh", "-c", fmt.Sprintf("exit %d", 10+i))
		p := start(t, rt, s)
		if code, err := rt.Wait(context.Background(), s.ID, p); err != nil || code != 10+i {
			t.Errorf("Wait = %d, %v; want %d", code, err, 10+i)
		}
	}
	s := busyboxSpec(t, "sleep", "1000")
	start(t, rt, s)
	for i := range 5 {
		code, err := rt.Exec(context.Background(), s.ID, ExecSpec{Args: []string{"sh", "-c", fmt.Sprintf("exit %d", 20+i)}})
		if err != nil || code != 20+i {
			t.Errorf("Exec = %d, %v; want %d", code, err, 20+i)
		}
	}
}

// TestFailedStartLeavesNoZombie: a runc that fails half-way (here: the
// network namespace it is to join is not one) orphans its bootstrap child;
// that child is re-parented to the reaper, which reaps it. Under the old
// design it stayed a zombie child of the daemon ("runc:[1:CHILD]").
func TestFailedStartLeavesNoZombie(t *testing.T) {
	rt := newTestRuntime(t)
	s := busyboxSpec(t, "true")
	s.NetNSPath = filepath.Join(t.TempDir(), "not-a-namespace")
	if err := os.WriteFile(s.NetNSPath, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := startFails(t, rt, s); err == nil {
			t.Fatal("Start joined a regular file as its network namespace")
		}
	}
	// runc's own: the test binary, a child subreaper as the daemon is,
	// may have other tests' orphans among its children.
	runcs := func() []string {
		return slices.DeleteFunc(zombiesOf(t, os.Getpid(), reaperPid(t, rt)), func(z string) bool { return !strings.Contains(z, "(runc") })
	}
	var zombies []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if zombies = runcs(); len(zombies) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(zombies) > 0 {
		t.Errorf("zombies left: %q", zombies)
	}
}

// reaperPid finds rt's reaper by its command line.
func reaperPid(t *testing.T, rt *Runtime) int {
	t.Helper()
	want := reaperArg0 + "\x00" + rt.cfg.ReaperDir + "\x00"
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && string(b) == want {
			pid, _ := strconv.Atoi(e.Name())
			return pid
		}
	}
	t.Fatal("no reaper process")
	return 0
}

// zombiesOf lists "pid (comm)" of the zombie children of parents.
func zombiesOf(t *testing.T, parents ...int) []string {
	t.Helper()
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+1:])
		if len(f) < 2 || f[0] != "Z" {
			continue
		}
		for _, p := range parents {
			if f[1] == strconv.Itoa(p) {
				out = append(out, e.Name()+" "+s[strings.IndexByte(s, '('):i+1])
			}
		}
	}
	return out
}

// TestRemoveEmptyCgroups: a container's empty cgroup directories are
// removed in every hierarchy (those a runc killed half-way through a
// start leaves), under berth's parent or a --cgroup-parent, and another
// container's stay, and the parent.
func TestRemoveEmptyCgroups(t *testing.T) {
	for _, p := range []string{"", "/berth-test-parent-" + randomID(t)[:8]} {
		t.Run("parent "+p, func(t *testing.T) { testRemoveEmptyCgroups(t, p) })
	}
}

func testRemoveEmptyCgroups(t *testing.T, cgParent string) {
	nstest.RequireRoot(t)
	id, other := randomID(t), randomID(t)
	var made []string
	// Under each hierarchy (v1) and the root (v2); a parent directory the
	// test makes goes again after it (cleanups run last made, first run).
	for _, h := range append([]string{""}, cgroupHierarchies()...) {
		parent := filepath.Join(cgroupRoot, h, cmp.Or(cgParent, cgroupParent))
		if _, err := os.Stat(parent); err != nil {
			if os.Mkdir(parent, 0o755) != nil {
				continue
			}
			t.Cleanup(func() { os.Remove(parent) })
		}
		for _, c := range []string{id, other} {
			d := filepath.Join(parent, c)
			if err := os.Mkdir(d, 0o755); err == nil {
				made = append(made, d)
				t.Cleanup(func() { os.Remove(d) })
			}
		}
	}
	if len(made) == 0 {
		nstest.Unavailable(t, "no cgroup hierarchy takes a directory here")
	}
	removeEmptyCgroups(cgroupsPath(cgParent, id))
	for _, d := range made {
		_, err := os.Stat(d)
		if mine := filepath.Base(d) == id; mine && err == nil {
			t.Errorf("%s is still there", d)
		} else if !mine && err != nil {
			t.Errorf("another container's %s went: %v", d, err)
		}
		if _, err := os.Stat(filepath.Dir(d)); err != nil {
			t.Errorf("the parent of %s went: %v", d, err)
		}
	}
}
