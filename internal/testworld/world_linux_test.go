package testworld

import (
	"errors"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
)

func TestHostNetwork(t *testing.T) {
	w := New(t)
	if diff := cmp.Diff([]string{"eth0", "lo"}, w.LinkNames(t, w.HostNS())); diff != "" {
		t.Errorf("host links (-want +got):\n%s", diff)
	}
	h := w.HostHandle(t)
	eth0, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := h.AddrList(eth0, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) != 1 || addrs[0].IPNet.String() != "198.51.100.2/24" {
		t.Errorf("eth0 addresses = %v, want [198.51.100.2/24]", addrs)
	}
	routes, err := h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	if !hasDefaultVia(routes, GatewayAddr) {
		t.Errorf("host routes %v have no default via %s", routes, GatewayAddr)
	}
}

func hasDefaultVia(routes []netlink.Route, gw netip.Addr) bool {
	for _, r := range routes {
		if (r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw != nil && r.Gw.String() == gw.String() {
			return true
		}
	}
	return false
}

func TestHostReachesServer(t *testing.T) {
	w := New(t)
	if _, _, code := w.InHost(t, "busybox", "ping", "-c", "1", "-W", "5", ServerAddr.String()); code != 0 {
		t.Errorf("ping from host to %s: exit %d", ServerAddr, code)
	}
	out, _, code := w.InHost(t, "timeout", "30", "busybox", "wget", "-q", "-O", "-", "http://"+ServerAddr.String()+"/")
	if code != 0 || out != "you are 198.51.100.2\n" {
		t.Errorf("wget from host: exit %d, output %q", code, out)
	}
	if diff := cmp.Diff([]netip.Addr{HostAddr}, w.SeenSources(), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("sources seen by the server (-want +got):\n%s", diff)
	}
}

// TestHostReachesServerOverIPv6: the world's IPv6 side, which IPv6
// networks' tests rely on.
func TestHostReachesServerOverIPv6(t *testing.T) {
	w := New(t)
	out, _, code := w.InHost(t, "timeout", "30", "busybox", "wget", "-q", "-O", "-", "http://["+ServerAddr6.String()+"]/")
	if code != 0 || out != "you are "+HostAddr6.String()+"\n" {
		t.Errorf("wget from host over IPv6: exit %d, output %q", code, out)
	}
}

func TestOutsideWorld(t *testing.T) {
	w := New(t)
	out, _, code := w.InOutside(t, "ip", "-o", "-4", "addr", "show")
	for _, want := range []string{"203.0.113.10/32", "198.51.100.1/24"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("outside addresses: exit %d, %q lacks %s", code, out, want)
		}
	}
}

// The test process's own namespace must not carry any of the world's addresses.
func TestRootNamespaceUntouched(t *testing.T) {
	New(t)
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		for _, world := range []netip.Addr{HostAddr, GatewayAddr, ServerAddr} {
			if a.IP.String() == world.String() {
				t.Errorf("root namespace got world address %s", a.IPNet)
			}
		}
	}
}

func TestCleanupRemovesEverything(t *testing.T) {
	var w *World
	t.Run("world", func(t *testing.T) { w = New(t) })
	if err := syscall.Kill(w.HolderPID(), 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("holder %d still alive after cleanup (kill 0: %v)", w.HolderPID(), err)
	}
	if _, err := os.Stat(w.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("world dir %s still there: %v", w.Dir, err)
	}
}

func TestDaemonLifecycle(t *testing.T) {
	w := New(t)
	d := w.Start(t, "--bridge-name", "br-test")
	if got, want := daemonNetns(t, w), mustInode(t, w.HostNS()); got != want {
		t.Errorf("daemon runs in netns %d, want the host's %d", got, want)
	}
	d.Stop()
	if !d.exited() {
		t.Fatal("daemon still running after Stop")
	}
	d = w.Start(t)
	d.Kill()
	d = w.Start(t) // after a SIGKILL, with a stale socket
	log, err := os.ReadFile(d.LogPath)
	if err != nil || !strings.Contains(string(log), "fake daemon listening") {
		t.Errorf("daemon log %s: %q, %v", d.LogPath, log, err)
	}
}

func daemonNetns(t *testing.T, w *World) uint64 {
	t.Helper()
	resp, err := w.httpClient().Get("http://berth/netns")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	n, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		t.Fatalf("parse /netns answer %q: %v", b, err)
	}
	return n
}

func mustInode(t *testing.T, path string) uint64 {
	t.Helper()
	ino, ok := nsInode(path)
	if !ok {
		t.Fatalf("%s is not a namespace", path)
	}
	return ino
}

func TestBerthCLI(t *testing.T) {
	w := New(t)
	out, _, code := w.Berth(t, "network", "ls")
	if want := "args=network,ls host=unix://" + w.Socket + "\n"; code != 0 || out != want {
		t.Errorf("berth network ls: exit %d, %q; want %q", code, out, want)
	}
	_, errOut, code := w.Berth(t, "fail")
	if code != 3 || errOut != "failing as asked\n" {
		t.Errorf("berth fail: exit %d, stderr %q; want 3, \"failing as asked\\n\"", code, errOut)
	}
}

func TestReapStrays(t *testing.T) {
	w := New(t)
	sandbox := filepath.Join(w.ExecRoot, "netns", "stray")
	w.InHost(t, "mkdir", "-p", filepath.Dir(sandbox))
	w.InHost(t, "touch", sandbox)
	if _, _, code := w.InHost(t, "unshare", "--net", "mount", "--bind", "/proc/self/ns/net", sandbox); code != 0 {
		t.Fatal("bind a sandbox in the host")
	}
	pid := strconv.Itoa(w.HolderPID())
	inHost := startStray(t, "nsenter", "-t", pid, "-m", "-n", "--", "sleep", "infinity")
	inSandbox := startStray(t, "nsenter", "-t", pid, "-m", "--", "nsenter", "--net="+sandbox, "--", "sleep", "infinity")
	if got := w.NetnsFiles(t); !cmp.Equal(got, []string{"stray (ns)"}) {
		t.Errorf("netns files = %q, want [stray (ns)]", got)
	}
	w.reap()
	for _, c := range []*exec.Cmd{inHost, inSandbox} {
		if err := c.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
			t.Errorf("%v: exit %v, want killed", c.Args, err)
		}
	}
}

// startStray starts a process the world does not know about. nsenter
// execs the sleep without forking, so its PID is the one reap must find.
func startStray(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitForNetnsChange(t, cmd.Process.Pid)
	return cmd
}

// waitForNetnsChange waits until pid has left the test's network namespace,
// i.e. nsenter has entered the target and exec'd.
func waitForNetnsChange(t *testing.T, pid int) {
	t.Helper()
	self := mustInode(t, "/proc/self/ns/net")
	for {
		ino, ok := nsInode("/proc/" + strconv.Itoa(pid) + "/ns/net")
		if !ok {
			t.Fatalf("process %d vanished", pid)
		}
		if ino != self && strings.HasPrefix(cmdline(pid), "sleep") {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func TestBusyboxImportsOnce(t *testing.T) {
	w := New(t)
	w.Start(t)
	for range 2 {
		if got := w.Busybox(t); got != BusyboxImage {
			t.Errorf("Busybox = %q, want %q", got, BusyboxImage)
		}
	}
	st, err := os.Stat(filepath.Join(w.Dir, "busybox.tar"))
	if err != nil || st.Size() == 0 {
		t.Errorf("busybox tar: %v, %v", st, err)
	}
}
