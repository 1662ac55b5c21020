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
	set := func(ns, v string) {
		t.Helper()
		if err := sandbox.Do(ns, func() error { return os.WriteFile(bridgeNFPath, []byte(v), 0o644) }); err != nil {
			t.Fatal(err)
		}
	}
	get := func(ns string) string {
		t.Helper()
		var v string
		if err := sandbox.Do(ns, func() error {
			b, err := os.ReadFile(bridgeNFPath)
			v = strings.TrimSpace(string(b))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return v
	}
	set(host, "0")
	set(other, "0")
	d, err := New(host, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.EnableBridgeNetfilter(); err != nil {
		t.Fatal(err)
	}
	if got := get(host); got != "1" {
		t.Fatalf("host namespace: bridge-nf-call-iptables = %s, want 1", got)
	}
	if got := get(other); got != "0" {
		t.Fatalf("another namespace changed: %s", got)
	}
}
