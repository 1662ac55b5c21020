package runtime

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// grandchild starts "sh" that starts "sleep" in the background and waits:
// the sleep is a process the test process can see but is not the parent of,
// like a container a restarted daemon re-adopts.
func grandchild(t *testing.T) Process {
	t.Helper()
	sh := exec.Command("sh", "-c", "sleep 1000 & echo $!; wait")
	out, err := sh.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sh.Process.Kill()
		sh.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	p, err := processOf(pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	return p
}

func TestWaitForProcessThatIsNotOurChild(t *testing.T) {
	rt := newTestRuntime(t)
	p := grandchild(t)
	if !rt.Alive(p) {
		t.Fatal("Alive = false for a running process")
	}
	result := make(chan int, 1)
	go func() {
		code, err := rt.Wait(context.Background(), "adopted", p)
		if err != nil {
			t.Errorf("Wait: %v", err)
		}
		result <- code
	}()
	if err := rt.Signal("adopted", p, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := <-result; code != -1 {
		t.Errorf("Wait = %d, want -1 (exit code unknowable)", code)
	}
}

func TestRecycledPidIsLeftAlone(t *testing.T) {
	rt := newTestRuntime(t)
	p := grandchild(t)
	other := Process{Pid: p.Pid, PidStart: p.PidStart + 1}
	if rt.Alive(other) {
		t.Error("Alive = true for a process with another start time")
	}
	if err := rt.Signal("old", other, syscall.SIGKILL); err != nil {
		t.Errorf("Signal: %v", err)
	}
	if code, err := rt.Wait(context.Background(), "old", other); code != -1 || err != nil {
		t.Errorf("Wait = %d, %v; want -1, nil at once", code, err)
	}
	if !rt.Alive(p) {
		t.Error("the process now owning the PID was signalled")
	}
}

func TestWaitEndsWithContext(t *testing.T) {
	rt := newTestRuntime(t)
	p := grandchild(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := rt.Wait(ctx, "c", p); err == nil {
		t.Error("Wait with a cancelled context returned no error")
	}
	if !rt.Alive(p) {
		t.Error("Wait with a cancelled context touched the process")
	}
}

// TestWaitsHoldNoThreads checks that a container's wait parks in the Go
// runtime's poller rather than in a system call: a daemon waits on every
// running container, and a thread each (woken five times a second, as a
// blocking poll once was) does not scale to 1,000 of them.
func TestWaitsHoldNoThreads(t *testing.T) {
	rt := newTestRuntime(t)
	const n = 40
	procs := make([]Process, n)
	for i := range procs {
		procs[i] = grandchild(t)
	}
	before := threads(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, n)
	for i, p := range procs {
		go func() {
			_, err := rt.Wait(ctx, "c"+strconv.Itoa(i), p)
			done <- err
		}()
	}
	time.Sleep(500 * time.Millisecond) // every wait has reached where it blocks
	after := threads(t)
	cancel()
	for range n {
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Wait after cancel = %v, want context.Canceled", err)
		}
	}
	if after-before >= n/2 {
		t.Errorf("%d waits took %d more threads (%d → %d); want them parked in the poller", n, after-before, before, after)
	}
	for _, p := range procs {
		if !rt.Alive(p) {
			t.Error("a cancelled Wait touched its process")
		}
	}
}

// TestWaitSeesExitWhileParked ends a process while its Wait is parked.
func TestWaitSeesExitWhileParked(t *testing.T) {
	rt := newTestRuntime(t)
	p := grandchild(t)
	result := make(chan error, 1)
	go func() {
		_, err := rt.Wait(context.Background(), "c", p)
		result <- err
	}()
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-result:
		t.Fatalf("Wait returned %v before the process ended", err)
	default:
	}
	if err := syscall.Kill(p.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-result:
		if err != nil {
			t.Errorf("Wait: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not see the process end")
	}
}

// threads counts this process's threads.
func threads(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
