package network

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/store"
)

// TestBridgePortLimit: the 1,023rd endpoint of a network joins; the next
// is refused with a clear error before an address or a veth is taken.
func TestBridgePortLimit(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "big", IPAM: []IPAMRequest{{Subnet: netip.MustParsePrefix("10.50.0.0/20")}}}); err != nil {
		t.Fatal(err)
	}
	for i := range MaxBridgePorts {
		sb := r.sandbox(t, fmt.Sprintf("c%d", i))
		r.join(t, sb, "big", JoinRequest{Name: fmt.Sprintf("c%d", i)})
	}
	veths := len(r.drv.veths)
	sb := r.sandbox(t, "one-too-many")
	before := r.snapshot(t)[store.BucketEndpoints]
	_, err := r.c.Join(ctx, sb.ID, "big", JoinRequest{Name: "one-too-many"})
	if !errdefs.Is(err, errdefs.KindUnavailable) || !strings.Contains(err.Error(), `network "big" has 1023 endpoints`) {
		t.Fatalf("1,024th Join: %v; want an Unavailable error naming the limit", err)
	}
	if got := len(r.drv.veths); got != veths {
		t.Errorf("the refused Join made veths: %d, want %d", got, veths)
	}
	if after := r.snapshot(t)[store.BucketEndpoints]; len(after) != len(before) || len(before) != MaxBridgePorts {
		t.Errorf("the refused Join recorded an endpoint")
	}
	// Another network still takes the container.
	r.join(t, sb, NameBridge, JoinRequest{Name: "one-too-many"})
}
