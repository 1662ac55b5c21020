package nstest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Firewalld is a firewalld of a test's own: it filters the network
// namespace it was started in, answers on a D-Bus bus of its own (Bus,
// a dbus-daemon the test started), and keeps its configuration in a copy
// of /etc/firewalld in the test's directory, so neither the machine's
// bus, firewall nor configuration is touched. Both processes end with
// the test.
type Firewalld struct {
	Bus   string // the D-Bus address: "unix:path=…"
	netns string
	dir   string
	t     testing.TB
	bus   *exec.Cmd
	fw    *exec.Cmd
}

// StartFirewalld starts dbus-daemon and firewalld for the network
// namespace at netnsPath and returns once firewalld answers; each setup
// is given the directory of firewalld's configuration first (its copy of
// /etc/firewalld). A machine without them makes it Unavailable (a
// failure under CI=true).
func StartFirewalld(t testing.TB, netnsPath string, setup ...func(etc string)) *Firewalld {
	t.Helper()
	RequireRoot(t)
	for _, bin := range []string{"dbus-daemon", "firewalld", "firewall-cmd"} {
		if _, err := exec.LookPath(bin); err != nil {
			Unavailable(t, bin+" is not installed (Debian: firewalld)")
		}
	}
	dir, err := os.MkdirTemp("", "berth-firewalld-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &Firewalld{Bus: "unix:path=" + filepath.Join(dir, "bus"), netns: netnsPath, dir: dir, t: t}
	conf := fmt.Sprintf(`<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`, f.Bus)
	if err := os.WriteFile(filepath.Join(dir, "bus.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", "/etc/firewalld", filepath.Join(dir, "etc")).CombinedOutput(); err != nil {
		t.Fatalf("copy /etc/firewalld: %v: %s", err, out)
	}
	for _, fn := range setup {
		fn(f.Etc())
	}
	f.bus = f.spawn("dbus.log", "dbus-daemon", "--config-file="+filepath.Join(dir, "bus.conf"), "--nofork", "--nopidfile")
	if !f.wait(func() bool { _, err := os.Stat(filepath.Join(dir, "bus")); return err == nil }) {
		t.Fatalf("dbus-daemon never made its socket\n%s", f.logs())
	}
	f.Start()
	return f
}

// spawn runs argv in the namespace, in a mount namespace of its own with
// a tmpfs on /run (nothing reaches the machine's), logging to the file name in the directory;
// it is killed when the test ends.
func (f *Firewalld) spawn(log string, argv ...string) *exec.Cmd {
	f.t.Helper()
	lf, err := os.Create(filepath.Join(f.dir, log))
	if err != nil {
		f.t.Fatal(err)
	}
	defer lf.Close()
	script := `mount -t tmpfs none /run && mkdir -p /run/firewalld && exec "$@"`
	cmd := exec.Command("nsenter", append([]string{"--net=" + f.netns, "--", "unshare", "--mount", "--propagation", "private",
		"--", "sh", "-c", script, "sh"}, argv...)...)
	cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+f.Bus)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.t.Fatalf("start %s: %v", argv[0], err)
	}
	f.t.Cleanup(func() { stop(cmd) })
	return cmd
}

func stop(cmd *exec.Cmd) {
	if cmd.ProcessState != nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// Start starts firewalld (again, after Stop) and returns once it answers
// (its state may be running, or failed: a configuration it could not
// load).
func (f *Firewalld) Start() {
	f.t.Helper()
	f.fw = f.spawn("firewalld.log", "firewalld", "--nofork", "--nopid",
		"--system-config", f.Etc(), "--log-target", "console")
	if !f.wait(func() bool { _, err := f.Cmd("--get-default-zone"); return err == nil }) {
		f.t.Fatalf("firewalld never ran\n%s", f.logs())
	}
}

// Etc is the directory of firewalld's configuration.
func (f *Firewalld) Etc() string { return filepath.Join(f.dir, "etc") }

// Stop stops firewalld (it deletes its table as it goes).
func (f *Firewalld) Stop() { stop(f.fw) }

// Cmd runs firewall-cmd with args against this firewalld.
func (f *Firewalld) Cmd(args ...string) (string, error) {
	cmd := exec.Command("firewall-cmd", args...)
	cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+f.Bus)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// MustCmd is Cmd, failing the test on an error.
func (f *Firewalld) MustCmd(args ...string) string {
	f.t.Helper()
	out, err := f.Cmd(args...)
	if err != nil {
		f.t.Fatalf("firewall-cmd %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return out
}

func (f *Firewalld) wait(ok func() bool) bool {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if ok() {
			return true
		}
	}
	return false
}

func (f *Firewalld) logs() string {
	var b strings.Builder
	for _, name := range []string{"dbus.log", "firewalld.log"} {
		out, _ := os.ReadFile(filepath.Join(f.dir, name))
		fmt.Fprintf(&b, "--- %s ---\n%s", name, out)
	}
	return b.String()
}
