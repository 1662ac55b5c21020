package bridge

import (
	"os"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/nstest"
	"github.com/berth-net/berth/internal/sandbox"
)

func TestEnableBridgeNetfilterOnlyInHostNamespace(t *testing.T) {
	host := nstest.New(t)
	other := nstest.New(t)
	set := func(ns, path, v string) {
		t.Helper()
		if err := sandbox.Do(ns, func() error { return os.WriteFile(path, []byte(v), 0o644) }); err != nil {
			t.Fatal(err)
		}
	}
	get := func(ns, path string) string {
		t.Helper()
		var v string
		if err := sandbox.Do(ns, func() error {
			b, err := os.ReadFile(path)
			v = strings.TrimSpace(string(b))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return v
	}
	paths := []string{bridgeNFPath, bridgeNF6Path}
	for _, ns := range []string{host, other} {
		for _, p := range paths {
			set(ns, p, "0")
		}
	}
	d, err := New(host, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.EnableBridgeNetfilter(); err != nil {
		t.Fatal(err)
	}
	// IPv4 at once; IPv6 only once a bridge has IPv6, as moby's
	// setupIPv6BridgeNetFiltering.
	if got := get(host, bridgeNFPath); got != "1" {
		t.Errorf("host namespace: %s = %s, want 1", bridgeNFPath, got)
	}
	if got := get(host, bridgeNF6Path); got != "0" {
		t.Errorf("host namespace: %s = %s before any IPv6 network, want 0", bridgeNF6Path, got)
	}
	w := &testWorld{host: host, d: d}
	w.ensureDualStackBridge(t)
	for _, p := range paths {
		if got := get(host, p); got != "1" {
			t.Errorf("host namespace: %s = %s, want 1", p, got)
		}
		if got := get(other, p); got != "0" {
			t.Errorf("another namespace's %s changed: %s", p, got)
		}
	}
}
