// Package harness drives berth for the benchmarks from inside the bench's
// private namespaces: it starts `berth daemon` as a child, talks to it
// through berth's own API client, builds the outside world that masquerade
// and throughput tests need, and runs iperf3 in namespaces. It assumes the
// caller already runs in namespaces of its own (the bench re-execs itself
// under unshare) and never touches anything outside its directory there.
package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-net/berth/internal/client"
	"github.com/berth-net/berth/internal/runtime/image/imagetest"
)

// Daemon is one `berth daemon` child with a client for it.
type Daemon struct {
	*client.Client
	Dir     string
	LogPath string
	args    []string // given after the roots and socket; a restart passes them again
	cmd     *exec.Cmd
	done    chan struct{} // closed once the daemon has exited and waitErr is set
	waitErr error
}

// StartDaemon runs bin as `berth daemon` with its roots and socket under
// dir, and args after them, and returns once the API answers.
func StartDaemon(ctx context.Context, bin, dir string, args ...string) (*Daemon, error) {
	sock := filepath.Join(dir, "berth.sock")
	d := &Daemon{Dir: dir, LogPath: filepath.Join(dir, "daemon.log"), args: args, done: make(chan struct{})}
	logf, err := os.Create(d.LogPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	d.cmd = exec.Command(bin, append([]string{"daemon",
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--host", "unix://" + sock}, args...)...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	// No Pdeathsig: it fires when the forking OS thread exits, and the
	// bench's namespace work throws threads away. The bench's PID
	// namespace is what ties the daemon's life to the bench's.
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s daemon: %w", bin, err)
	}
	go func() {
		d.waitErr = d.cmd.Wait()
		close(d.done) // every waiter sees it: waitReady's, then Kill's
	}()
	if d.Client, err = client.New("unix://"+sock, nil); err != nil {
		d.Kill()
		return nil, err
	}
	if err := d.waitReady(ctx); err != nil {
		d.Kill()
		return nil, err
	}
	return d, nil
}

// waitReady polls the API until it answers; the limit only keeps a broken
// daemon from hanging the bench.
func (d *Daemon) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := d.Ping(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-d.done:
			return fmt.Errorf("daemon exited (%v); log in %s", d.waitErr, d.LogPath)
		case <-time.After(2 * time.Millisecond): // fine enough to time a restart by
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("daemon never answered: %w", err)
		}
	}
}

// Pid is the daemon's process ID.
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

// Stop sends SIGTERM and waits.
func (d *Daemon) Stop() error {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		return d.waitErr
	case <-time.After(30 * time.Second):
		d.Kill()
		return errors.New("daemon ignored SIGTERM; killed it")
	}
}

// Kill kills the daemon and waits for it.
func (d *Daemon) Kill() {
	d.cmd.Process.Kill()
	<-d.done
}

// RSS returns the daemon's resident set size in bytes (VmRSS).
func (d *Daemon) RSS() (int64, error) { return rssOf(d.Pid()) }

// ReaperRSS returns the resident set size of the daemon's reaper, the
// process that is the parent of every container (internal/runtime), and
// the private part of it (RssAnon; the rest is the berth binary's pages,
// which the daemon maps too). It is found by its command line,
// "berth-reaper <exec-root>/reaper".
func (d *Daemon) ReaperRSS() (rss, private int64, err error) {
	want := "berth-reaper\x00" + filepath.Join(d.Dir, "exec", "reaper") + "\x00"
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0, err
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && string(b) == want {
			if rss, err = rssOf(pid); err != nil {
				return 0, 0, err
			}
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			if err != nil {
				return 0, 0, err
			}
			private, err = parseStatusKB(strings.NewReader(string(b)), "RssAnon")
			return rss, private, err
		}
	}
	return 0, 0, errors.New("no reaper process found")
}

func rssOf(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseVmRSS(f)
}

// parseVmRSS reads the "VmRSS:  21464 kB" line of /proc/PID/status.
func parseVmRSS(r io.Reader) (int64, error) { return parseStatusKB(r, "VmRSS") }

// parseStatusKB reads the "key:  21464 kB" line of /proc/PID/status, in bytes.
func parseStatusKB(r io.Reader, key string) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), key+":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("unexpected %s line %q", key, sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		return kb << 10, err
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no VmRSS line")
}

// ImportBusybox imports a busybox root filesystem (the host's static
// busybox) as image name.
func (d *Daemon) ImportBusybox(ctx context.Context, name string) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(imagetest.WriteBusyboxTar(pw)) }()
	body, err := d.ImageImport(ctx, pr, name, "", "", nil)
	if err != nil {
		pr.CloseWithError(err)
		return fmt.Errorf("import busybox: %w", err)
	}
	defer body.Close()
	out, err := io.ReadAll(body)
	if err != nil {
		return fmt.Errorf("import busybox: %w", err)
	}
	if strings.Contains(string(out), `"error"`) {
		return fmt.Errorf("import busybox: %s", out)
	}
	return nil
}

// Restart stops the daemon with SIGTERM and starts bin again on the same
// roots, as an upgrade does; it returns the new daemon, how long the old
// one took to exit, and how long the new one took from its exec to an
// answer of the API (polled every 2 ms).
func (d *Daemon) Restart(ctx context.Context, bin string) (nd *Daemon, stop, serve time.Duration, err error) {
	t0 := time.Now()
	if err := d.Stop(); err != nil {
		return nil, 0, 0, fmt.Errorf("stop the daemon: %w", err)
	}
	stop = time.Since(t0)
	t1 := time.Now()
	nd, err = StartDaemon(ctx, bin, d.Dir, d.args...)
	if err != nil {
		return nil, stop, 0, err
	}
	return nd, stop, time.Since(t1), nil
}

// NetworkActionTotals reads the metrics a daemon serves at addr (its
// --metrics-addr): how many network actions of the kind (connect,
// allocate, release) it has timed, and their seconds in all
// (engine_daemon_network_actions_seconds, as dockerd's). The time is the
// daemon's own: from the connect's start (its request read and decoded,
// its container found) to its end, before the answer is written.
func NetworkActionTotals(ctx context.Context, addr, action string) (count, seconds float64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("read the daemon's metrics: %w", err)
	}
	defer resp.Body.Close()
	return parseNetworkAction(resp.Body, action)
}

// parseNetworkAction reads action's count and sum out of the metrics text
// r; both 0 when the daemon has timed no such action yet.
func parseNetworkAction(r io.Reader, action string) (count, seconds float64, err error) {
	labels := `{action="` + action + `"} `
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		for _, f := range []struct {
			name string
			v    *float64
		}{{"count", &count}, {"sum", &seconds}} {
			if v, ok := strings.CutPrefix(sc.Text(), "engine_daemon_network_actions_seconds_"+f.name+labels); ok {
				if *f.v, err = strconv.ParseFloat(v, 64); err != nil {
					return 0, 0, fmt.Errorf("metrics line %q: %w", sc.Text(), err)
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	return count, seconds, nil
}
