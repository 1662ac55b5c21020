package e2e

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-net/berth/internal/sandbox"
	"github.com/berth-net/berth/internal/testworld"
)

// TestSocketAccess: the API socket is root's with mode 0660, a user who is
// neither root nor in its group is refused, and --group lets that group in.
func TestSocketAccess(t *testing.T) {
	w, d := startWorld(t)
	checkSocket(t, w.Socket, 0)
	// Only the socket's own mode may stand in the way: the world's
	// directory and a copy of the binary are open to everyone.
	if err := os.Chmod(w.Dir, 0o711); err != nil {
		t.Fatal(err)
	}
	bin := publicBinary(t)
	asNobody := func() (string, int) {
		t.Helper()
		out, errOut, code := w.InHost(t, "env", "BERTH_HOST=unix://"+w.Socket,
			"setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", bin, "ps")
		return out + errOut, code
	}
	if out, code := asNobody(); code == 0 || !strings.Contains(strings.ToLower(out), "permission denied") {
		t.Errorf("berth ps as nobody: exit %d, %q; want permission denied", code, out)
	}
	d.Stop()
	w.Start(t, "--group", "65534")
	checkSocket(t, w.Socket, 65534)
	if out, code := asNobody(); code != 0 {
		t.Errorf("berth ps as a member of --group: exit %d, %q", code, out)
	}
}

func checkSocket(t *testing.T, path string, gid uint32) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 || st.Uid != 0 || st.Gid != gid {
		t.Errorf("socket %s: mode %v, owner %d:%d; want a socket, 0660, 0:%d", path, fi.Mode(), st.Uid, st.Gid, gid)
	}
}

// publicBinary copies the berth binary where any user may run it.
func publicBinary(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "berth-public-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(testworld.Binary(t))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst := filepath.Join(dir, "berth")
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, src); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// listenInHost serves "hello" on TCP addr inside the world's host namespace
// until the test ends.
func listenInHost(t *testing.T, w *testworld.World, addr string) {
	t.Helper()
	var l net.Listener
	err := sandbox.Do(w.HostNS(), func() error {
		var err error
		l, err = net.Listen("tcp4", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen on %s in the host: %v", addr, err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "hello\n")
			c.Close()
		}
	}()
}

// dial connects from a container to addr:port with busybox nc and reports
// whether the host's listener answered. One try: wrap it in retried where
// the answer must be yes.
func dial(t *testing.T, w *testworld.World, from, addr, port string) bool {
	t.Helper()
	out, _, _ := w.Berth(t, "exec", from, "sh", "-c", "timeout 5 nc "+addr+" "+port+" </dev/null")
	return strings.Contains(out, "hello")
}

// TestContainersCannotReachHost: a service listening on every address of
// the host is closed to containers, through their gateway or any other
// host address; DNS, ping and connections the host opens still work, the
// outside world is still reachable, and the API socket is not in the
// container.
func TestContainersCannotReachHost(t *testing.T) {
	w, _ := startWorld(t)
	w.MustBerth(t, "network", "create", "--subnet", "10.95.0.0/24", "web")
	runSleeper(t, w, "c1")
	runSleeper(t, w, "c2", "--network", "web")
	listenInHost(t, w, "0.0.0.0:8099")
	listenInHost(t, w, "0.0.0.0:53")

	for _, tc := range []struct{ from, addr string }{
		{"c1", "172.17.0.1"},                // its own gateway
		{"c1", testworld.HostAddr.String()}, // the host's outside address
		{"c2", "10.95.0.1"},                 // a user network's gateway
		{"c2", "172.17.0.1"},                // another network's gateway
		{"c1", "127.0.0.1"},                 // its own loopback: nothing there
	} {
		if dial(t, w, tc.from, tc.addr, "8099") {
			t.Errorf("%s reached the host's service at %s:8099", tc.from, tc.addr)
		}
	}
	if !retried(func() bool { return dial(t, w, "c1", "172.17.0.1", "53") }) {
		t.Errorf("c1 cannot reach DNS (tcp 53) on the host")
	}
	if !pings(t, w, "c1", bridgeGateway) {
		t.Errorf("c1 cannot ping its gateway")
	}
	c1 := containerIP(t, w, "c1").String()
	if !retried(func() bool {
		_, _, code := w.InHost(t, "busybox", "ping", "-c", "1", "-W", "5", c1)
		return code == 0
	}) {
		t.Errorf("the host cannot ping c1 (replies must come back)")
	}
	if got := fetchAnswer(t, w, "c1"); got != "you are 198.51.100.2\n" {
		t.Errorf("c1 reached the outside as %q", got)
	}
	// The rootfs overlay names the data-root in its options; no mount
	// point may be the daemon's socket or anything under the world's dir.
	mounts := w.MustBerth(t, "exec", "c1", "cat", "/proc/mounts")
	for _, line := range strings.Split(mounts, "\n") {
		if f := strings.Fields(line); len(f) > 1 && (strings.HasPrefix(f[1], w.Dir) || strings.Contains(f[1], ".sock")) {
			t.Errorf("the container has a mount of the daemon's files: %s", line)
		}
	}
	if _, _, code := w.Berth(t, "exec", "c1", "ls", w.Socket); code == 0 {
		t.Errorf("the API socket %s exists inside the container", w.Socket)
	}
}

// TestHostAccessOptIn: containers reach a host service, as with Docker,
// on a network created with berth.bridge.host_access=true, and on the
// default bridge of a daemon started with --bridge-host-access; other
// networks stay closed, and refuse at once rather than time out.
func TestHostAccessOptIn(t *testing.T) {
	w, _ := startWorld(t, "--bridge-host-access")
	listenInHost(t, w, "0.0.0.0:8099")
	mustDocker(t, w, "network", "create", "--subnet", "10.97.0.0/24", "-o", "berth.bridge.host_access=true", "dev")
	mustDocker(t, w, "network", "create", "--subnet", "10.98.0.0/24", "closed")
	runSleeper(t, w, "onbridge")
	runSleeper(t, w, "ondev", "--network", "dev")
	runSleeper(t, w, "onclosed", "--network", "closed")
	for _, tc := range []struct {
		from, addr string
		want       bool
	}{
		{"onbridge", "172.17.0.1", true},
		{"ondev", "10.97.0.1", true},
		{"ondev", testworld.HostAddr.String(), true},
		{"onclosed", "10.98.0.1", false},
	} {
		got := dial(t, w, tc.from, tc.addr, "8099")
		if tc.want && !got {
			got = retried(func() bool { return dial(t, w, tc.from, tc.addr, "8099") })
		}
		if got != tc.want {
			t.Errorf("%s to the host's service at %s:8099: reached = %v, want %v", tc.from, tc.addr, got, tc.want)
		}
	}
	out, _, _ := w.Berth(t, "exec", "onclosed", "sh", "-c", "nc 10.98.0.1 8099 </dev/null; echo rc=$?")
	if !strings.Contains(out, "rc=1") {
		t.Errorf("nc to a closed host service: %q, want a failure", out)
	}
	if got := dockerInspect(t, w, `{{index .Options "berth.bridge.host_access"}}`, "bridge"); got != "true" {
		t.Errorf("the default bridge's options show host_access %q, want true", got)
	}
}
