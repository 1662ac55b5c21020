package firewall

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestFake(t *testing.T) {
	ctx := context.Background()
	var f Fake // the zero value is ready
	user := Network{Bridge: "br-1", Subnet: netip.MustParsePrefix("10.1.0.7/24"), ICC: true}
	if err := f.Rebuild(ctx, []Network{defaultBridge}); err != nil {
		t.Fatal(err)
	}
	if err := f.AddNetwork(ctx, user); err != nil {
		t.Fatal(err)
	}
	user.ICC = false
	if err := f.AddNetwork(ctx, user); err != nil {
		t.Fatalf("replacing a network: %v", err)
	}
	clash := Network{Bridge: "br-2", Subnet: netip.MustParsePrefix("10.1.0.0/16")}
	if err := f.AddNetwork(ctx, clash); !errdefs.Is(err, errdefs.KindConflict) {
		t.Errorf("AddNetwork of an overlapping subnet: %v, want a conflict", err)
	}
	boom := errors.New("boom")
	f.Err = boom
	if err := f.DelNetwork(ctx, user); !errors.Is(err, boom) {
		t.Errorf("DelNetwork with Err set: %v", err)
	}
	user.Subnet = user.Subnet.Masked()
	want := []Network{defaultBridge, user}
	if diff := cmp.Diff(want, f.Networks(), cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{})); diff != "" {
		t.Errorf("networks (-want +got):\n%s", diff)
	}
	if got, wantText := f.Ruleset().String(), mustBuild(t, want).String(); got != wantText {
		t.Errorf("Ruleset differs from Build of the same networks:\n%s", got)
	}
	if err := f.DelNetwork(ctx, user); err != nil {
		t.Fatal(err)
	}
	if err := f.DelNetwork(ctx, user); err != nil {
		t.Errorf("second DelNetwork: %v", err)
	}
	wantCalls := []string{"Rebuild", "AddNetwork br-1", "AddNetwork br-1", "AddNetwork br-2",
		"DelNetwork br-1", "DelNetwork br-1", "DelNetwork br-1"}
	if diff := cmp.Diff(wantCalls, f.Calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]Network{defaultBridge}, f.Networks(), cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{})); diff != "" {
		t.Errorf("networks after delete (-want +got):\n%s", diff)
	}
}

func TestFakeRebuildRejectsBadInput(t *testing.T) {
	f := NewFake()
	if err := f.Rebuild(context.Background(), []Network{defaultBridge}); err != nil {
		t.Fatal(err)
	}
	if err := f.Rebuild(context.Background(), []Network{defaultBridge, defaultBridge}); err == nil {
		t.Fatal("Rebuild accepted a bridge twice")
	}
	if len(f.Networks()) != 1 {
		t.Errorf("a rejected Rebuild changed the networks: %v", f.Networks())
	}
}

func mustBuild(t *testing.T, nets []Network) *Ruleset {
	t.Helper()
	rs, err := Build(nets)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}
