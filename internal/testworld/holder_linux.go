package testworld

import (
	"bufio"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// holder keeps the host's network and mount namespaces alive for the whole
// test, so that a restarted daemon (started with nsenter -t PID -m -n) sees
// the netns bind mounts and rootfs mounts the previous one made.
type holder struct {
	cmd *exec.Cmd // the unshare process
	pid int       // its child, a sleep inside the namespaces
}

// startHolder runs `unshare --net --mount --propagation private --fork`
// around a shell that prints its PID and becomes `sleep infinity`. The PID
// line arrives only after unshare has made the namespaces and made mounts
// private, so once it is read the namespaces are ready. --kill-child ties
// the sleep to unshare, and startTied ties unshare to the test process.
func startHolder() (*holder, error) {
	cmd := exec.Command("unshare", "--net", "--mount", "--propagation", "private",
		"--fork", "--kill-child", "--",
		"/bin/sh", "-c", "echo $$; exec sleep infinity >/dev/null")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := startTied(cmd); err != nil {
		return nil, fmt.Errorf("start unshare: %w", err)
	}
	h := &holder{cmd: cmd}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		h.stop()
		return nil, fmt.Errorf("read holder pid: %w (unshare said %q)", err, stderr.String())
	}
	if h.pid, err = strconv.Atoi(strings.TrimSpace(line)); err != nil {
		h.stop()
		return nil, fmt.Errorf("parse holder pid %q: %w", line, err)
	}
	if err := setLinkUp(h.netnsPath(), "lo"); err != nil {
		h.stop()
		return nil, err
	}
	return h, nil
}

func (h *holder) netnsPath() string { return fmt.Sprintf("/proc/%d/ns/net", h.pid) }

func (h *holder) rootPath(p string) string {
	return filepath.Join(fmt.Sprintf("/proc/%d/root", h.pid), p)
}

// stop kills the sleep by PID; unshare reaps it and exits, and we reap
// unshare. Only if the sleep cannot be signalled is unshare killed itself.
// When no process is left in them, the kernel frees the namespaces with
// every mount and link they hold.
func (h *holder) stop() error {
	var err error
	if h.pid > 0 {
		err = syscall.Kill(h.pid, syscall.SIGKILL)
	}
	if h.pid <= 0 || err != nil {
		h.cmd.Process.Kill()
	}
	h.cmd.Wait() // killed on purpose: its exit status says nothing
	if err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill holder %d: %w", h.pid, err)
	}
	return nil
}
