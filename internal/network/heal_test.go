package network

import (
	"context"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// healRig: network "web" beside "bridge"; c1 on both, c2 on bridge, c3 on web.
func healRig(t *testing.T) (r *rig, web *Network, sb1, sb2, sb3 *Sandbox, eps map[string]*Endpoint) {
	t.Helper()
	r = newRig(t)
	web, err := r.c.CreateNetwork(context.Background(), CreateRequest{Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	sb1, sb2, sb3 = r.sandbox(t, "c1"), r.sandbox(t, "c2"), r.sandbox(t, "c3")
	eps = map[string]*Endpoint{
		"c1/bridge": r.join(t, sb1, "bridge", JoinRequest{Name: "c1"}),
		"c1/web":    r.join(t, sb1, "web", JoinRequest{Name: "c1"}),
		"c2/bridge": r.join(t, sb2, "bridge", JoinRequest{Name: "c2"}),
		"c3/web":    r.join(t, sb3, "web", JoinRequest{Name: "c3"}),
	}
	return r, web, sb1, sb2, sb3, eps
}

func sandboxIDs(sbs []DamagedSandbox) []string {
	var out []string
	for _, sb := range sbs {
		out = append(out, sb.ID)
	}
	return out
}

// Damaged names the bridges and the sandboxes to mend: a veth's own
// sandbox; every sandbox on a touched bridge; everything when
// notifications were lost. Owners no record knows (a leave's, a removed
// network's, a stranger's) name nothing.
func TestDamagedMapsOwnersToWhatToMend(t *testing.T) {
	r, web, sb1, sb2, sb3, eps := healRig(t)
	bridge, err := r.c.Network("bridge")
	if err != nil {
		t.Fatal(err)
	}
	sorted := func(ids ...string) []string { slices.Sort(ids); return ids }
	for _, tc := range []struct {
		name      string
		dmg       LinkDamage
		networks  []string
		sandboxes []string
	}{
		{"a veth", LinkDamage{Owners: map[string]string{endpointOwner(eps["c2/bridge"].ID): "vethx deleted"}}, nil, []string{sb2.ID}},
		{"a bridge", LinkDamage{Owners: map[string]string{bridgeOwner(web.ID): "br deleted"}}, []string{web.ID}, sorted(sb1.ID, sb3.ID)},
		{"strangers", LinkDamage{Owners: map[string]string{"endpoint:nosuch": "x", "network:nosuch": "y", "other": "z"}}, nil, nil},
		{"lost", LinkDamage{Lost: true}, sorted(bridge.ID, web.ID), sorted(sb1.ID, sb2.ID, sb3.ID)},
	} {
		nets, sbs := r.c.Damaged(tc.dmg)
		if diff := cmp.Diff(tc.networks, nets); diff != "" {
			t.Errorf("%s: networks (-want +got):\n%s", tc.name, diff)
		}
		if diff := cmp.Diff(tc.sandboxes, sandboxIDs(sbs)); diff != "" {
			t.Errorf("%s: sandboxes (-want +got):\n%s", tc.name, diff)
		}
	}
	for _, sb := range func() []DamagedSandbox { _, s := r.c.Damaged(LinkDamage{Lost: true}); return s }() {
		want := map[string]string{sb1.ID: "c1", sb2.ID: "c2", sb3.ID: "c3"}[sb.ID]
		if sb.ContainerID != want {
			t.Errorf("sandbox %s: container %q, want %q", sb.ID, sb.ContainerID, want)
		}
	}

	// What berth removed itself is not damage.
	if err := r.c.Leave(context.Background(), sb2.ID, "bridge"); err != nil {
		t.Fatal(err)
	}
	if err := r.c.Leave(context.Background(), sb3.ID, "web"); err != nil {
		t.Fatal(err)
	}
	if err := r.c.Leave(context.Background(), sb1.ID, "web"); err != nil {
		t.Fatal(err)
	}
	if err := r.c.RemoveNetwork(context.Background(), "web"); err != nil {
		t.Fatal(err)
	}
	nets, sbs := r.c.Damaged(LinkDamage{Owners: map[string]string{
		endpointOwner(eps["c2/bridge"].ID): "deleted", bridgeOwner(web.ID): "deleted",
	}})
	if len(nets) != 0 || len(sbs) != 0 {
		t.Errorf("after the leaves and the removal: networks %v, sandboxes %v; want none", nets, sandboxIDs(sbs))
	}
}

// Before Start has loaded the records, nothing is damage: Start checks
// every link itself.
func TestDamagedIsEmptyBeforeStart(t *testing.T) {
	r := newRig(t)
	c := New(r.c.cfg)
	if nets, sbs := c.Damaged(LinkDamage{Lost: true}); len(nets) != 0 || len(sbs) != 0 {
		t.Errorf("Damaged before Start = %v, %v", nets, sbs)
	}
}

// HealSandbox makes a pair that is gone again, as Join made it (with the
// default route on the gateway endpoint only), and hands the pairs that
// exist to Adopt, which puts them back up and on their bridges.
func TestHealSandboxRemakesMissingPairsAndAdoptsTheRest(t *testing.T) {
	r, _, sb1, _, _, eps := healRig(t)
	gone, kept := eps["c1/bridge"], eps["c1/web"]
	want := r.drv.veths[gone.HostIfName]
	if err := r.drv.Leave(sb1.Key, want); err != nil { // deleted by hand
		t.Fatal(err)
	}
	r.drv.adopted = nil
	remade, err := r.c.HealSandbox(context.Background(), sb1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{gone.ID}, remade); diff != "" {
		t.Errorf("remade (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, r.drv.veths[gone.HostIfName], cmpNetip); diff != "" {
		t.Errorf("the pair made again differs from the one Join made (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{kept.HostIfName}, r.drv.adopted); diff != "" {
		t.Errorf("adopted (-want +got):\n%s", diff)
	}
	// A second pass finds both.
	if remade, err := r.c.HealSandbox(context.Background(), sb1.ID); err != nil || len(remade) != 0 {
		t.Errorf("second HealSandbox = %v, %v; want nothing made", remade, err)
	}
}

// HealBridge makes a deleted bridge again as the network records it, and
// leaves a removed network's alone.
func TestHealBridgeMakesTheBridgeAgainUnlessRemoved(t *testing.T) {
	r := newRig(t)
	web, err := r.c.CreateNetwork(context.Background(), CreateRequest{Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	want := r.drv.bridges[web.Bridge.Name]
	if err := r.drv.DeleteBridge(web.Bridge.Name); err != nil { // deleted by hand
		t.Fatal(err)
	}
	if err := r.c.HealBridge(web.ID); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, r.drv.bridges[web.Bridge.Name], cmpNetip); diff != "" {
		t.Errorf("bridge made again (-want +got):\n%s", diff)
	}
	if got := r.drv.owners[web.Bridge.Name]; got != bridgeOwner(web.ID) {
		t.Errorf("owner %q, want %q", got, bridgeOwner(web.ID))
	}
	if err := r.c.RemoveNetwork(context.Background(), web.ID); err != nil {
		t.Fatal(err)
	}
	if err := r.c.HealBridge(web.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.drv.bridges[web.Bridge.Name]; ok {
		t.Error("HealBridge made a removed network's bridge again")
	}
}

// Add keeps every owner of both reports, what happened to each in
// order, and says lost if either did.
func TestLinkDamageAdd(t *testing.T) {
	var d LinkDamage
	d.Add(LinkDamage{Owners: map[string]string{"endpoint:a": "veth1 set down"}})
	d.Add(LinkDamage{Owners: map[string]string{"endpoint:a": "veth1 deleted", "network:n": "br deleted"}})
	d.Add(LinkDamage{Owners: map[string]string{"endpoint:a": "veth1 deleted"}, Lost: true})
	d.Add(LinkDamage{})
	want := LinkDamage{Lost: true, Owners: map[string]string{"endpoint:a": "veth1 set down, veth1 deleted", "network:n": "br deleted"}}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Errorf("added up (-want +got):\n%s", diff)
	}
}

// Damage to an endpoint whose join is still running is not dropped: the
// sandbox is named, and HealSandbox (which the daemon runs once the join
// has released the container's lock) mends it as a ready endpoint.
func TestDamagedCountsAnEndpointBeingMade(t *testing.T) {
	r := newRig(t)
	sb := r.sandbox(t, "c1")
	var during []string
	r.drv.duringJoin = func(spec EndpointSpec) {
		_, sbs := r.c.Damaged(LinkDamage{Owners: map[string]string{spec.Owner: spec.HostIfName + " set down"}})
		during = sandboxIDs(sbs)
	}
	r.join(t, sb, "bridge", JoinRequest{Name: "c1"})
	if diff := cmp.Diff([]string{sb.ID}, during); diff != "" {
		t.Errorf("damage during the join named (-want +got):\n%s", diff)
	}
}

// HealBridge and RemoveNetwork run side by side (the watcher's goroutine
// and an API request): no race, and the removed network's bridge is not
// made again.
func TestHealBridgeBesideRemoveNetwork(t *testing.T) {
	for range 20 {
		r := newRig(t)
		web, err := r.c.CreateNetwork(context.Background(), CreateRequest{Name: "web"})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error)
		go func() { done <- r.c.HealBridge(web.ID) }()
		if err := r.c.RemoveNetwork(context.Background(), web.ID); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if _, ok := r.drv.bridges[web.Bridge.Name]; ok {
			t.Fatal("the removed network's bridge exists after HealBridge")
		}
	}
}

// A join that finds its network's bridge deleted (by hand, not mended
// yet) makes it again and joins, as a start would, instead of failing
// the start or connect.
func TestJoinMakesAMissingBridgeAgain(t *testing.T) {
	r := newRig(t)
	web, err := r.c.CreateNetwork(context.Background(), CreateRequest{Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.drv.DeleteBridge(web.Bridge.Name); err != nil { // deleted by hand
		t.Fatal(err)
	}
	ep := r.join(t, r.sandbox(t, "c1"), "web", JoinRequest{Name: "c1"})
	if _, ok := r.drv.bridges[web.Bridge.Name]; !ok {
		t.Error("the bridge was not made again")
	}
	if _, ok := r.drv.veths[ep.HostIfName]; !ok {
		t.Error("the endpoint's pair was not made")
	}
}

// DamageOf names the networks and every endpoint of the sandboxes that
// is not leaving, for a failed pass to be tried again.
func TestDamageOfNamesWhatToTryAgain(t *testing.T) {
	r, web, sb1, _, _, eps := healRig(t)
	dmg := r.c.DamageOf([]string{web.ID}, []DamagedSandbox{{ID: sb1.ID, ContainerID: "c1"}}, "not mended yet")
	want := LinkDamage{Owners: map[string]string{
		bridgeOwner(web.ID):                "not mended yet",
		endpointOwner(eps["c1/bridge"].ID): "not mended yet",
		endpointOwner(eps["c1/web"].ID):    "not mended yet",
	}}
	if diff := cmp.Diff(want, dmg); diff != "" {
		t.Errorf("damage to try again (-want +got):\n%s", diff)
	}
	nets, sbs := r.c.Damaged(dmg)
	if len(nets) != 1 || len(sbs) != 2 { // web's sandboxes: c1 and c3
		t.Errorf("Damaged of it: networks %v, sandboxes %v", nets, sandboxIDs(sbs))
	}
}
