package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-net/berth/internal/api"
	"github.com/spf13/cobra"
)

// NewCommand returns `berth daemon`.
func NewCommand() *cobra.Command {
	cfg := Config{}
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the berth daemon",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			warnings, err := loadConfigFile(cmd.Flags(), cfg.ConfigFile)
			if err != nil {
				return err
			}
			cfg.FileWarnings = warnings
			if err := cfg.checkRuntimeOptions(); err != nil {
				return err
			}
			level, err := cfg.logLevel()
			if err != nil {
				return err
			}
			lv := new(slog.LevelVar)
			lv.Set(level)
			var h slog.Handler = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv})
			if cfg.LogFormat == "json" {
				h = slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lv})
			}
			cfg.Log = slog.New(h)
			cfg.Reload = func() (string, error) { return reloadLogLevel(cmd.Flags(), cfg.ConfigFile, lv) }
			return Run(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	addFlags(f, &cfg)
	f.StringVar(&cfg.ResolvConf, "resolv-conf", "", "host resolver configuration to read instead of /etc/resolv.conf (for tests)")
	_ = f.MarkHidden("resolv-conf")
	return cmd
}

// Run starts the daemon and serves until SIGTERM or SIGINT. Containers keep
// running after it returns.
func Run(ctx context.Context, cfg Config) error {
	path, ok := strings.CutPrefix(cfg.Host, "unix://")
	if !ok || path == "" {
		return fmt.Errorf("--host %q: only unix:///path sockets are supported", cfg.Host)
	}
	// Both checks come before anything is read or touched: a second
	// daemon that went on to reconcile would take the first one's
	// bridges, veths and table for leftovers of its own and remove them
	// (QA round 24), and only then find the socket taken.
	lock, err := lockNetns()
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := api.CheckSocketFree(path); err != nil {
		return err
	}
	var metricsListener net.Listener
	if cfg.MetricsAddr != "" {
		if metricsListener, err = listenMetrics(cfg.MetricsAddr); err != nil {
			return err
		}
		defer metricsListener.Close() // for a start that fails before it serves
	}
	if cfg.Pidfile != "" {
		if err := writePidfile(cfg.Pidfile); err != nil {
			return err
		}
		defer removePidfile(cfg.Pidfile)
	}
	d, err := New(cfg)
	if err != nil {
		return err
	}
	defer d.Close()
	// A panic here must end the process with its stack, as a crash does
	// (the state is made to survive one), not wait in d.Close for a lock
	// the panicking code held: a start that panicked under the network
	// controller's lock hung, silent, with no socket.
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "panic: %v\n\n%s", r, debug.Stack())
			os.Exit(2)
		}
	}()
	if err := d.Start(ctx); err != nil {
		return err
	}
	if metricsListener != nil {
		defer d.serveMetrics(metricsListener)()
	}
	if err := os.MkdirAll(dirOf(path), 0o755); err != nil {
		return err
	}
	l, err := api.ListenUnix(path, cfg.Group)
	if err != nil {
		return err
	}
	srv := api.New(d, cfg.Log.With("component", "api"))
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	cfg.Log.Info("berth daemon ready", "socket", path, "data-root", cfg.DataRoot, "exec-root", cfg.ExecRoot)
wait:
	for {
		select {
		case sig := <-sigs:
			if sig != syscall.SIGHUP {
				cfg.Log.Info("shutting down", "signal", sig.String())
				break wait
			}
			// dockerd's reload (systemctl reload, a logrotate hook):
			// never the end of the daemon.
			if cfg.Reload == nil {
				cfg.Log.Info("SIGHUP: nothing to reload")
			} else if what, err := cfg.Reload(); err != nil {
				cfg.Log.Error("SIGHUP: the configuration was not reloaded", "err", err)
			} else {
				cfg.Log.Info("SIGHUP: configuration reloaded", "changed", what)
			}
		case err := <-errc:
			return err
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	os.Remove(path)
	return nil
}

// writePidfile writes the daemon's PID to path, as dockerd's --pidfile:
// a file naming a process that still runs refuses the start, in dockerd's
// words; one naming a process gone (a crash) is replaced.
func writePidfile(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("failed to create pidfile directory: %w", err)
	}
	if b, err := os.ReadFile(path); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 && pid != os.Getpid() && alive(pid) {
			return fmt.Errorf("failed to start daemon, ensure berth is not running or delete %s: process with PID %d is still running", path, pid)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("pidfile %s: %w", path, err)
	}
	return os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())), 0o644)
}

// alive reports whether process pid exists: a signal 0 reaches it, or
// may not (EPERM: it is someone else's), as moby's process.Alive.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// removePidfile removes path if it still holds this process's PID: a
// daemon of another namespace given the same path may have written it
// since.
func removePidfile(path string) {
	if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(os.Getpid()) {
		_ = os.Remove(path)
	}
}

// netnsLockName is an abstract unix socket: abstract names belong to the
// network namespace, so holding it means "the berth daemon of this
// namespace", and the kernel lets it go when the process dies, however.
const netnsLockName = "@berth-daemon"

// netnsLockWait is how long lockNetns waits for a daemon that is exiting.
const netnsLockWait = 2 * time.Second

// lockNetns makes this the only berth daemon of the network namespace it
// runs in. Two would share the bridges (berth0 and every br-*), the
// nftables table inet berth and the host's veths, and each would remove
// what the other made as leftovers of its own. The listener is never
// accepted on; closing it (or exiting) releases the namespace. A daemon
// killed a moment ago may not have let go yet (its exit takes a while with
// many threads), so a taken name is tried again for up to netnsLockWait,
// as the store's lock waits for its file.
func lockNetns() (net.Listener, error) {
	deadline := time.Now().Add(netnsLockWait)
	l, err := net.Listen("unix", netnsLockName)
	for errors.Is(err, syscall.EADDRINUSE) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		l, err = net.Listen("unix", netnsLockName)
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, errors.New("another berth daemon runs in this network namespace (it holds the abstract socket " + netnsLockName +
			"): stop it first, or run this one in a network namespace of its own; two daemons would each remove the other's bridges, veths and rules as their own leftovers")
	}
	if err != nil {
		return nil, fmt.Errorf("lock the network namespace (abstract socket %s): %w", netnsLockName, err)
	}
	return l, nil
}

func dirOf(p string) string {
	i := strings.LastIndex(p, "/")
	if i <= 0 {
		return "/"
	}
	return p[:i]
}
