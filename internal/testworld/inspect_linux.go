package testworld

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/berth-net/berth/internal/sandbox"
)

// Handle returns a netlink handle inside the network namespace at nsPath
// (a path the test process can open, e.g. w.HostPath(sandboxKey) or
// /proc/PID/ns/net), closed when the test ends.
func (w *World) Handle(t testing.TB, nsPath string) *netlink.Handle {
	t.Helper()
	h, err := openHandle(nsPath)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(h.Close)
	return h
}

// HostHandle is Handle for the host's network namespace.
func (w *World) HostHandle(t testing.TB) *netlink.Handle {
	t.Helper()
	return w.Handle(t, w.HostNS())
}

// linksIn lists the links in the namespace at nsPath through a handle of
// its own, closed at once: the checks that call it may run many times in
// one test (a wait for a settled host), and a handle kept to the test's
// end each time ran the process out of files.
func linksIn(t testing.TB, nsPath string) []netlink.Link {
	t.Helper()
	h, err := openHandle(nsPath)
	if err != nil {
		t.Fatalf("%v", err)
	}
	defer h.Close()
	return listLinks(t, h)
}

// LinkNames returns the names of the links in the namespace at nsPath, sorted.
func (w *World) LinkNames(t testing.TB, nsPath string) []string {
	t.Helper()
	links := linksIn(t, nsPath)
	names := make([]string, 0, len(links))
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	sort.Strings(names)
	return names
}

// BridgePorts returns the names of the host's links enslaved to bridge, sorted.
func (w *World) BridgePorts(t testing.TB, bridge string) []string {
	t.Helper()
	links := linksIn(t, w.HostNS())
	index := 0
	for _, l := range links {
		if l.Attrs().Name == bridge {
			index = l.Attrs().Index
		}
	}
	if index == 0 {
		t.Fatalf("no bridge %q in the host", bridge)
	}
	var ports []string
	for _, l := range links {
		if l.Attrs().MasterIndex == index {
			ports = append(ports, l.Attrs().Name)
		}
	}
	sort.Strings(ports)
	return ports
}

// NetnsFiles lists the files in <exec-root>/netns as the host sees them,
// sorted; bound namespaces are marked with a trailing " (ns)". The
// daemon's own binding (sandbox.DefaultID, host-network containers'
// SandboxKey) is no sandbox's and is left out, as sandbox.List leaves it.
func (w *World) NetnsFiles(t testing.TB) []string {
	t.Helper()
	dir := w.HostPath(filepath.Join(w.ExecRoot, "netns"))
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatalf("list netns dir: %v", err)
	}
	var names []string
	for _, e := range ents {
		n := e.Name()
		if n == sandbox.DefaultID {
			continue
		}
		if _, ok := nsInode(filepath.Join(dir, n)); ok {
			n += " (ns)"
		}
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// SameNamespace reports whether two namespace files are the same namespace.
func SameNamespace(a, b string) bool {
	ia, okA := nsInode(a)
	ib, okB := nsInode(b)
	return okA && okB && ia == ib
}

// listLinks dumps links, retrying when the kernel interrupts the dump.
func listLinks(t testing.TB, h *netlink.Handle) []netlink.Link {
	t.Helper()
	for range 5 {
		links, err := h.LinkList()
		if errors.Is(err, netlink.ErrDumpInterrupted) {
			continue
		}
		if err != nil {
			t.Fatalf("list links: %v", err)
		}
		return links
	}
	t.Fatalf("list links: dump interrupted 5 times")
	return nil
}
