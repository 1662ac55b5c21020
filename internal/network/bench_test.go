package network

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/store"
)

// BenchmarkConnectDisconnect is the controller's own share of a `network
// connect` and `disconnect` (planning, IPAM, names, the journal records
// with their fdatasync on the test's filesystem), with a driver that does
// nothing: berth-bench's connect row minus this is the kernel's part.
//
//	go test -run '^$' -bench ConnectDisconnect ./internal/network/
func BenchmarkConnectDisconnect(b *testing.B) {
	st, err := store.OpenBolt(filepath.Join(b.TempDir(), "berth.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	c := New(Config{
		Store: st, Driver: newFakeDriver(), Sandboxes: newFakeSandboxes(), Firewall: newFakeFirewall(),
		Nameservers: []netip.Addr{netip.MustParseAddr("10.255.255.53")}, NewID: seqIDs(),
		Now: func() time.Time { return time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC) },
	})
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := c.CreateNetwork(ctx, CreateRequest{Name: "bench"}); err != nil {
		b.Fatal(err)
	}
	var sbs []*Sandbox
	for i := range 10 {
		sb, err := c.CreateSandbox(ctx, fmt.Sprintf("c%d", i), false)
		if err != nil {
			b.Fatal(err)
		}
		sbs = append(sbs, sb)
	}
	container := map[string]any{"name": "probe", "config": map[string]any{"image": "busybox", "cmd": []string{"sleep", "3600"}}}
	b.ResetTimer()
	for i := range b.N {
		sb := sbs[i%len(sbs)]
		rec := func(tx store.Tx) error { return tx.Put(store.BucketContainers, sb.ContainerID, container) }
		if _, err := c.Join(ctx, sb.ID, "bench", JoinRequest{ContainerID: sb.ContainerID, Name: sb.ContainerID, Record: rec}); err != nil {
			b.Fatal(err)
		}
		if err := c.LeaveAndRecord(ctx, sb.ID, "bench", rec); err != nil {
			b.Fatal(err)
		}
	}
}
