package sandbox_test

import (
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/nstest"
	"github.com/berth-net/berth/internal/sandbox"
	"golang.org/x/sys/unix"
)

func netnsInode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return st.Ino
}

// boundNetns makes a namespace bound to a file of the test's, unbound at
// its end.
func boundNetns(t *testing.T) string {
	t.Helper()
	nstest.RequireRoot(t)
	p := filepath.Join(t.TempDir(), "ns")
	if err := sandbox.NewBound(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sandbox.Unbind(p) })
	return p
}

func TestCreateDeleteIsIdempotentAndPrivate(t *testing.T) {
	nstest.RequireRoot(t)
	m, err := sandbox.NewManager(filepath.Join(t.TempDir(), "netns"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := m.Create("abc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Delete("abc") })
	if !sandbox.IsNamespace(p) {
		t.Fatalf("%s is not a bound netns", p)
	}
	// Compare with this thread's namespace: Go may wedge the main thread in
	// a namespace if a locked goroutine exits on it, so /proc/self lies.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if netnsInode(t, p) == netnsInode(t, "/proc/thread-self/ns/net") {
		t.Fatal("sandbox shares the test's own network namespace")
	}
	again, err := m.Create("abc")
	if err != nil || again != p {
		t.Fatalf("second Create = %q, %v; want %q, nil", again, err, p)
	}
	ids, err := m.List()
	if err != nil || len(ids) != 1 || ids[0] != "abc" {
		t.Fatalf("List = %v, %v", ids, err)
	}
	// Do runs inside the namespace and leaves the caller's thread alone.
	var inside uint64
	if err := sandbox.Do(p, func() error {
		inside = netnsInode(t, "/proc/thread-self/ns/net")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if inside != netnsInode(t, p) {
		t.Fatal("Do did not run inside the sandbox")
	}
	var loUp bool
	if err := sandbox.Do(p, func() error {
		lo, err := net.InterfaceByName("lo")
		if err != nil {
			return err
		}
		loUp = lo.Flags&net.FlagUp != 0
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !loUp {
		t.Fatal("lo is down in a new sandbox")
	}
	if netnsInode(t, "/proc/thread-self/ns/net") == inside {
		t.Fatal("the caller's thread was left inside the sandbox")
	}
	for i := 0; i < 2; i++ {
		if err := m.Delete("abc"); err != nil {
			t.Fatalf("Delete #%d: %v", i+1, err)
		}
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatalf("netns file still there: %v", err)
	}
}

// TestDoHandsItsThreadBack: Do's threads go back to the caller's namespace
// and are used again, rather than thrown away and replaced (a new thread
// per call); and no thread of the process is left inside the sandbox.
func TestDoHandsItsThreadBack(t *testing.T) {
	p := boundNetns(t)
	inside := netnsInode(t, p)
	tids := map[int]bool{}
	for range 50 {
		if err := sandbox.Do(p, func() error {
			// No t.Fatal here: it would end Do's goroutine, not the test's.
			var st unix.Stat_t
			if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
				return err
			}
			if st.Ino != inside {
				t.Error("Do's function ran outside the sandbox")
			}
			tids[unix.Gettid()] = true
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if len(tids) > 10 {
		t.Errorf("50 Do calls ran on %d threads; want them reused", len(tids))
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		var st unix.Stat_t
		if err := unix.Stat("/proc/self/task/"+task.Name()+"/ns/net", &st); err != nil {
			continue // the thread ended meanwhile
		}
		if st.Ino == inside {
			t.Errorf("thread %s is still inside the sandbox", task.Name())
		}
	}
}

// TestDoSurvivesGoexit: a function that ends its goroutine (t.Fatal does)
// still lets Do return, with an error.
func TestDoSurvivesGoexit(t *testing.T) {
	p := boundNetns(t)
	done := make(chan error, 1)
	go func() { done <- sandbox.Do(p, func() error { runtime.Goexit(); return nil }) }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Do returned nil for a function that ended its goroutine")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Do did not return after its function ended its goroutine")
	}
}

// TestDoClosesItsFilesFirst: when Do returns, the files it opened (the
// namespace's, its thread's home namespace) are closed, so that a caller
// counting its fds (portalloc's tests do) sees none of Do's. Do's
// goroutine once closed one after it answered, and a caller that another
// P ran at once could count it: rarely per call, but in 17 of 20 runs of
// this test with -test.cpu=2 (none with one P, which cannot catch it).
func TestDoClosesItsFilesFirst(t *testing.T) {
	p := boundNetns(t)
	count := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	before := count()
	for i := range 20000 {
		if err := sandbox.Do(p, func() error { return nil }); err != nil {
			t.Fatal(err)
		}
		if n := count(); n != before {
			t.Fatalf("call %d: %d fds open after Do, %d before", i, n, before)
		}
	}
}

// TestBindDefault: the daemon's own namespace is bound at DefaultID (the
// SandboxKey of host-network containers), once however often it is
// asked, again in place of a binding of another namespace, and List
// leaves it out.
func TestBindDefault(t *testing.T) {
	nstest.RequireRoot(t)
	m, err := sandbox.NewManager(filepath.Join(t.TempDir(), "netns"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := m.BindDefault()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sandbox.Unbind(p) })
	if p != m.Path(sandbox.DefaultID) {
		t.Fatalf("BindDefault = %q, want %q", p, m.Path(sandbox.DefaultID))
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ours := netnsInode(t, "/proc/thread-self/ns/net")
	if netnsInode(t, p) != ours {
		t.Fatal("default is not the process's namespace")
	}
	mounts := func() int {
		b, err := os.ReadFile("/proc/thread-self/mountinfo")
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(string(b), " "+p+" ")
	}
	if _, err := m.BindDefault(); err != nil || mounts() != 1 {
		t.Fatalf("a second BindDefault: %v, %d mounts at %s, want 1", err, mounts(), p)
	}
	other, err := m.Create("abc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Delete("abc") })
	if ids, err := m.List(); err != nil || !slices.Equal(ids, []string{"abc"}) {
		t.Fatalf("List = %v, %v; want abc alone", ids, err)
	}
	// Bound to another namespace (a daemon that ran elsewhere).
	if err := sandbox.Unbind(p); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(other, p, "none", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := m.BindDefault(); err != nil {
		t.Fatal(err)
	}
	if netnsInode(t, p) != ours || mounts() != 1 {
		t.Fatalf("after a rebind: the namespace is ours: %v, %d mounts", netnsInode(t, p) == ours, mounts())
	}
}
