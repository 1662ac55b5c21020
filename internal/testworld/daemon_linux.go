package testworld

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// The daemon's start and stop are bounded only so that a hung daemon fails
// the test instead of eating the whole go test timeout; they are not
// performance assertions, so they are generous.
const (
	startLimit = 2 * time.Minute
	stopLimit  = time.Minute
)

// Daemon is one `berth daemon` process running in a world's host.
type Daemon struct {
	// LogPath holds its stdout and stderr.
	LogPath string

	w    *World
	t    testing.TB
	bin  string // the berth binary, for the CLI calls of cleanup
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has been reaped
	err  error         // its exit status, valid after done
}

// Start runs `berth daemon` inside the host with the world's data-root,
// exec-root and socket (args are appended, e.g. "--bridge-name", "br-e2e")
// and returns once /_ping answers. Only one daemon runs at a time.
func (w *World) Start(t testing.TB, args ...string) *Daemon {
	t.Helper()
	w.mu.Lock()
	running := w.daemon != nil && !w.daemon.exited()
	n := len(w.started) + 1
	w.mu.Unlock()
	if running {
		t.Fatalf("start daemon: one is already running (pid %d)", w.daemon.cmd.Process.Pid)
	}
	d := &Daemon{
		LogPath: filepath.Join(w.Dir, fmt.Sprintf("daemon-%d.log", n)),
		w:       w, t: t, bin: Binary(t), done: make(chan struct{}),
	}
	if err := d.start(d.bin, args); err != nil {
		t.Fatalf("start daemon: %v", err)
	}
	w.mu.Lock()
	w.daemon = d
	w.started = append(w.started, d)
	w.mu.Unlock()
	if err := d.waitReady(); err != nil {
		t.Fatalf("daemon never answered /_ping: %v\n%s", err, d.log())
	}
	return d
}

func (d *Daemon) start(bin string, extra []string) error {
	logf, err := os.Create(d.LogPath)
	if err != nil {
		return err
	}
	defer logf.Close() // the child keeps its own descriptor
	w := d.w
	args := []string{"-t", strconv.Itoa(w.holder.pid), "-m", "-n", "--",
		bin, "daemon",
		"--data-root", w.DataRoot,
		"--exec-root", w.ExecRoot,
		"--host", "unix://" + w.Socket}
	d.cmd = exec.Command("nsenter", append(args, extra...)...)
	// No daemon of a world talks to the machine's D-Bus system bus (a
	// firewalld there is the machine's): a world's own bus comes in
	// DaemonEnv, which wins.
	env := append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS=unix:path="+filepath.Join(w.Dir, "no-system-bus"))
	d.cmd.Env = append(env, w.DaemonEnv...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := startTied(d.cmd); err != nil {
		return err
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	return nil
}

// waitReady polls /_ping until it answers 200, the daemon exits, or startLimit passes.
func (d *Daemon) waitReady() error {
	c := d.w.httpClient()
	deadline := time.Now().Add(startLimit)
	for {
		if d.exited() {
			return fmt.Errorf("daemon exited: %v", d.err)
		}
		resp, err := c.Get("http://berth/_ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gave up after %v: %w", startLimit, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// httpClient talks HTTP to the world's socket.
func (w *World) httpClient() *http.Client {
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", w.Socket)
	}
	return &http.Client{Transport: &http.Transport{DialContext: dial}, Timeout: 10 * time.Second}
}

// Pid is the daemon's process ID (nsenter execs it, so it is the daemon's own).
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

// Stop sends SIGTERM and waits for the daemon to exit; a daemon that does
// not exit cleanly fails the test.
func (d *Daemon) Stop() {
	d.t.Helper()
	d.stopWith(d.t)
}

// stopWith is Stop reporting to t, which may outlive the test that started the daemon.
func (d *Daemon) stopWith(t interface {
	Helper()
	Errorf(string, ...any)
}) {
	t.Helper()
	if d.exited() {
		return
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(stopLimit):
		d.cmd.Process.Kill()
		<-d.done
		t.Errorf("daemon %d ignored SIGTERM for %v; killed it", d.Pid(), stopLimit)
		return
	}
	if d.err != nil {
		t.Errorf("daemon %d exited badly after SIGTERM: %v", d.Pid(), d.err)
	}
}

// Kill sends SIGKILL and waits for the daemon to die, as a crash would.
func (d *Daemon) Kill() {
	if d.exited() {
		return
	}
	d.cmd.Process.Kill()
	<-d.done
}

func (d *Daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

func (d *Daemon) log() string {
	b, err := os.ReadFile(d.LogPath)
	if err != nil {
		return fmt.Sprintf("(no daemon log: %v)", err)
	}
	return fmt.Sprintf("--- %s ---\n%s--- end of %s ---", d.LogPath, b, filepath.Base(d.LogPath))
}

func (w *World) printDaemonLogs() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, d := range w.started {
		w.t.Log(d.log())
	}
}
