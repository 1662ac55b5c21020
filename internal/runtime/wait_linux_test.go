package runtime

import (
	"bufio"
	"context"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
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
