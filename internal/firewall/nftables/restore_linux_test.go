package nftables

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/berth-net/berth/internal/firewall"
	"github.com/google/go-cmp/cmp"
)

// TestRestoreRebuildsWhatWasApplied: after another process deleted the
// table, Restore makes it again from what the firewall applied — the
// networks and ports added and withdrawn since its rebuild, in order — not
// from a snapshot of records a change under way may not have reached.
func TestRestoreRebuildsWhatWasApplied(t *testing.T) {
	fw, ns := newTestFirewall(t)
	ctx := context.Background()
	if err := fw.Restore(ctx); !errors.Is(err, firewall.ErrNothingToRestore) {
		t.Fatalf("Restore before anything was applied: %v", err)
	}
	if err := fw.Rebuild(ctx, []firewall.Network{defaultBridge}); err != nil {
		t.Fatal(err)
	}
	web := firewall.PortMapping{Proto: firewall.TCP, HostPort: 8080, Addr: netip.MustParseAddr("172.17.0.2"), Port: 80}
	gone := firewall.PortMapping{Proto: firewall.UDP, HostPort: 5353, Addr: netip.MustParseAddr("172.18.0.2"), Port: 53}
	if err := fw.AddNetwork(ctx, userNoICC); err != nil {
		t.Fatal(err)
	}
	if err := fw.AddPorts(ctx, []firewall.PortMapping{web, gone}); err != nil {
		t.Fatal(err)
	}
	if err := fw.DelPorts(ctx, []firewall.PortMapping{gone}); err != nil {
		t.Fatal(err)
	}
	run(t, ns, "nft", "delete", "table", "inet", "berth")
	if err := fw.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	rs, err := firewall.BuildWithPorts([]firewall.Network{defaultBridge, userNoICC}, []firewall.PortMapping{web})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(normalize(rs.String()), normalize(listTable(t, ns))); diff != "" {
		t.Errorf("restored table differs (-want +kernel):\n%s", diff)
	}
}
