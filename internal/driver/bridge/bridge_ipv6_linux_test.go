package bridge

import (
	"os"
	"testing"

	"github.com/berth-net/berth/internal/nstest"
	"github.com/berth-net/berth/internal/sandbox"
)

// writeSysctlIn writes a sysctl in the namespace at ns, as an
// administrator (or an earlier daemon) would have.
func writeSysctlIn(t *testing.T, ns, path, value string) {
	t.Helper()
	if err := sandbox.Do(ns, func() error { return os.WriteFile(path, []byte(value), 0o644) }); err != nil {
		t.Fatalf("write %s in %s: %v", path, ns, err)
	}
}

// Every bridge, IPv4-only ones too, refuses router advertisements: a
// container could forge one and become the host's default router
// (CVE-2020-13401). Only the bridge's own sysctl changes; a bridge made
// before (here with accept_ra=2, as default.accept_ra=2 gives) is fixed.
func TestEnsureBridgeRefusesRouterAdvertisements(t *testing.T) {
	w := newWorld(t)
	outsider := nstest.New(t)
	addBridge(t, w.h, "br-test", "")
	const path = "/proc/sys/net/ipv6/conf/br-test/accept_ra"
	writeSysctlIn(t, w.host, path, "2")
	w.ensureTestBridge(t)
	if got := readSysctlIn(t, w.host, path); got != "0" {
		t.Errorf("accept_ra on the bridge = %s, want 0", got)
	}
	for _, p := range []string{"/proc/sys/net/ipv6/conf/all/accept_ra", "/proc/sys/net/ipv6/conf/default/accept_ra", "/proc/sys/net/ipv6/conf/lo/accept_ra"} {
		if got := readSysctlIn(t, w.host, p); got != "1" {
			t.Errorf("%s = %s, want it untouched (1)", p, got)
		}
		if got := readSysctlIn(t, outsider, p); got != "1" {
			t.Errorf("another namespace's %s = %s, want 1", p, got)
		}
	}
}
