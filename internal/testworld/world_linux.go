// Package testworld builds private worlds for end-to-end tests of berth: a
// "host" (a network and mount namespace kept alive by a holder process, where
// every daemon of the world runs), an "outside world" namespace joined to the
// host by a veth, and a server in the outside world that records who called.
// A world owns everything it makes and removes all of it when the test ends,
// even when it fails; it never touches the root namespace's interfaces,
// routes, sysctls or firewall.
package testworld

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/berth-net/berth/internal/nstest"
)

// The addresses of a world, all from documentation ranges: nothing leaves
// the machine even if a packet escaped the namespaces.
var (
	// HostAddr is the host's address on its eth0, the source masquerade must show.
	HostAddr = netip.MustParseAddr("198.51.100.2")
	// GatewayAddr is the outside end of the host's eth0, its default route.
	GatewayAddr = netip.MustParseAddr("198.51.100.1")
	// ServerAddr is where the outside server listens (TCP 80, ICMP).
	ServerAddr = netip.MustParseAddr("203.0.113.10")
	// HostAddr6, GatewayAddr6 and ServerAddr6 are the same in IPv6
	// (2001:db8::/32, the documentation prefix): the host's eth0 has
	// 2001:db8:100::2/64 with its default route via ::1, and the server
	// listens on 2001:db8:113::10 too.
	HostAddr6    = netip.MustParseAddr("2001:db8:100::2")
	GatewayAddr6 = netip.MustParseAddr("2001:db8:100::1")
	ServerAddr6  = netip.MustParseAddr("2001:db8:113::10")
)

// World is one private host with its outside world.
type World struct {
	// Dir holds everything the world writes: data-root, exec-root, socket, logs.
	Dir      string
	DataRoot string
	ExecRoot string
	// Socket is the daemon's unix socket; the CLI reaches it from outside the host.
	Socket string
	// OutsideNS is the bound network namespace of the outside world.
	OutsideNS string
	// DaemonEnv is added to the environment of the daemons Start starts
	// (a test's own D-Bus system bus, for one).
	DaemonEnv []string

	t      testing.TB
	holder *holder
	server *server

	mu      sync.Mutex
	daemon  *Daemon   // the one running now, if any
	started []*Daemon // every daemon ever started, for their logs
	images  map[string]bool
}

// New makes a world for t and removes it in t.Cleanup. It needs root.
func New(t testing.TB) *World {
	t.Helper()
	nstest.RequireRoot(t)
	dir, err := os.MkdirTemp("", "berth-world-") // short: socket paths are limited to 108 bytes
	if err != nil {
		t.Fatalf("create world dir: %v", err)
	}
	w := &World{
		Dir:       dir,
		DataRoot:  filepath.Join(dir, "data"),
		ExecRoot:  filepath.Join(dir, "exec"),
		Socket:    filepath.Join(dir, "berth.sock"),
		OutsideNS: filepath.Join(dir, "outside.netns"),
		t:         t,
		images:    map[string]bool{},
	}
	t.Cleanup(w.close)
	if w.holder, err = startHolder(); err != nil {
		t.Fatalf("start world holder: %v", err)
	}
	if err := w.buildNetwork(); err != nil {
		t.Fatalf("build world network: %v", err)
	}
	if w.server, err = startServer(w.OutsideNS, ServerAddr, ServerAddr6); err != nil {
		t.Fatalf("start outside server: %v", err)
	}
	t.Logf("world %s: host holder pid %d, outside netns %s", dir, w.holder.pid, w.OutsideNS)
	return w
}

// HolderPID is the PID of the process whose mount and network namespaces
// are the host: `nsenter -t PID -m -n` enters it.
func (w *World) HolderPID() int { return w.holder.pid }

// HostNS is the path of the host's network namespace.
func (w *World) HostNS() string { return w.holder.netnsPath() }

// HostPath is p as the host's mount namespace sees it (through
// /proc/HOLDER/root), e.g. a netns bind mount under the exec-root, which
// exists only inside the host.
func (w *World) HostPath(p string) string { return w.holder.rootPath(p) }

// SeenSources returns the source address of every connection the outside
// server accepted, in arrival order.
func (w *World) SeenSources() []netip.Addr { return w.server.seen() }

// close tears the world down in dependency order and keeps going past
// errors: daemon and containers, stray processes, server, holder, outside
// namespace, files.
func (w *World) close() {
	t := w.t
	w.stopForCleanup()
	if w.holder != nil {
		w.reap()
	}
	if t.Failed() {
		w.printDaemonLogs()
	}
	var errs []error
	if w.server != nil {
		errs = append(errs, w.server.close())
	}
	if w.holder != nil {
		errs = append(errs, w.holder.stop())
	}
	errs = append(errs, unbindOutside(w.OutsideNS))
	errs = append(errs, os.RemoveAll(w.Dir))
	if err := errors.Join(errs...); err != nil {
		t.Errorf("remove world %s: %v", w.Dir, err)
	}
}

// HostNetns is the path of the host's network namespace, for tools that
// take one (nsenter --net=…).
func (w *World) HostNetns() string { return fmt.Sprintf("/proc/%d/ns/net", w.holder.pid) }
