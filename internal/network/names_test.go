package network

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/internal/store"
)

// nameRig is a controller with user networks "web" (10.7.0.0/24) and
// "api" (10.8.0.0/24) and helpers to run containers on them.
type nameRig struct {
	*rig
	t *testing.T
}

func newNameRig(t *testing.T) *nameRig {
	t.Helper()
	r := &nameRig{rig: newRig(t), t: t}
	for name, subnet := range map[string]string{"web": "10.7.0.0/24", "api": "10.8.0.0/24"} {
		if _, err := r.c.CreateNetwork(context.Background(), CreateRequest{Name: name, IPAM: []IPAMRequest{{Subnet: mustPrefix(subnet)}}}); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// ctrID is a 64-character container ID whose short ID starts with prefix.
func ctrID(prefix string) string { return prefix + strings.Repeat("0", 64-len(prefix)) }

// run makes a sandbox for container name and joins it to nets (with aliases for every network).
func (r *nameRig) run(name string, aliases []string, nets ...string) (*Sandbox, map[string]netip.Addr) {
	r.t.Helper()
	id := ctrID("c0ffee" + name)
	sb := r.sandbox(r.t, id)
	addrs := map[string]netip.Addr{}
	for _, n := range nets {
		ep := r.join(r.t, sb, n, JoinRequest{ContainerID: id, Name: name, Aliases: aliases})
		addrs[n] = ep.Address.Addr()
	}
	return sb, addrs
}

func (r *nameRig) resolve(sb *Sandbox, name string) []string {
	r.t.Helper()
	addrs, ok := r.c.Resolve(sb.ID, name)
	if ok != (len(addrs) > 0) {
		r.t.Errorf("Resolve(%q) = %v, %v: ok must mean addresses", name, addrs, ok)
	}
	var out []string
	for _, a := range addrs {
		out = append(out, a.String())
	}
	slices.Sort(out)
	return out
}

func strs(addrs ...netip.Addr) []string {
	var out []string
	for _, a := range addrs {
		out = append(out, a.String())
	}
	slices.Sort(out)
	return out
}

func TestResolveNameShortIDAliasAndCase(t *testing.T) {
	r := newNameRig(t)
	sbA, a := r.run("alpha", []string{"db", "Primary"}, "web")
	_, b := r.run("bravo", []string{"db"}, "web")
	tests := []struct {
		name string
		want []string
	}{
		{"bravo", strs(b["web"])},
		{"bravo.", strs(b["web"])},
		{"BRAVO", strs(b["web"])},
		{"c0ffeebravo0", strs(b["web"])}, // the 12-character short ID
		{"primary", strs(a["web"])},
		{"db", strs(a["web"], b["web"])}, // a shared alias: every address
		{"alpha", strs(a["web"])},        // itself
		{"bravo.web", strs(b["web"])},    // name.network
		{"bravo.WEB.", strs(b["web"])},
		{"bravo.api", nil},
		{"charlie", nil},
		{"c0ffeebravo", nil}, // only the 12-character short ID, not any prefix
		{"", nil},
		{".", nil},
	}
	for _, tt := range tests {
		if got := r.resolve(sbA, tt.name); !cmp.Equal(got, tt.want) {
			t.Errorf("Resolve(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
	if got, ok := r.c.ResolveAddr(sbA.ID, b["web"]); !ok || got != "bravo.web" {
		t.Errorf("ResolveAddr(%s) = %q, %v; want bravo.web", b["web"], got, ok)
	}
	if got, ok := r.c.ResolveAddr(sbA.ID, netip.MustParseAddr("10.7.0.200")); ok {
		t.Errorf("ResolveAddr of a free address = %q, want none", got)
	}
}

func TestResolveScope(t *testing.T) {
	r := newNameRig(t)
	sbA, _ := r.run("alpha", nil, "web")
	sbB, _ := r.run("bravo", []string{"b"}, "bridge")
	sbC, _ := r.run("charlie", nil, "bridge")
	sbD, _ := r.run("delta", nil, "api")
	for _, q := range []struct {
		from *Sandbox
		name string
	}{
		{sbA, "bravo"},   // on bridge, not on web
		{sbC, "bravo"},   // both on the default bridge: no discovery there, as Docker
		{sbC, "b"},       // nor by alias
		{sbB, "alpha"},   // the other way
		{sbD, "alpha"},   // another user network
		{sbA, "delta"},   // and back
		{sbA, "charlie"}, // nothing on bridge is found from web
	} {
		if got := r.resolve(q.from, q.name); got != nil {
			t.Errorf("Resolve(%q) from %s = %v, want nothing", q.name, q.from.ContainerID[:12], got)
		}
	}
	if r.c.NameResolution(sbB.ID) || !r.c.NameResolution(sbA.ID) {
		t.Errorf("NameResolution: bridge-only %v, web %v; want false, true", r.c.NameResolution(sbB.ID), r.c.NameResolution(sbA.ID))
	}
}

func TestResolveTwoNetworks(t *testing.T) {
	r := newNameRig(t)
	sbX, x := r.run("xray", nil, "web", "api")
	sbW, w := r.run("whiskey", nil, "web")
	sbA, _ := r.run("apple", nil, "api")
	if got, want := r.resolve(sbW, "xray"), strs(x["web"]); !cmp.Equal(got, want) {
		t.Errorf("from web: xray = %v, want its web address %v", got, want)
	}
	if got, want := r.resolve(sbA, "xray"), strs(x["api"]); !cmp.Equal(got, want) {
		t.Errorf("from api: xray = %v, want its api address %v", got, want)
	}
	if got, want := r.resolve(sbX, "whiskey"), strs(w["web"]); !cmp.Equal(got, want) {
		t.Errorf("xray resolves whiskey = %v, want %v", got, want)
	}
	if got := r.resolve(sbW, "apple"); got != nil {
		t.Errorf("whiskey (web) resolves apple (api only) = %v, want nothing", got)
	}
	// Both networks know xray, and xray is on both with the same
	// gw-priority and gateways: libnetwork's Endpoint.Less then orders the
	// networks by name, so api answers, though web is eth0.
	if got, want := r.resolve(sbX, "xray"), strs(x["api"]); !cmp.Equal(got, want) {
		t.Errorf("xray resolves itself = %v, want api's %v", got, want)
	}
	if got, want := r.resolve(sbX, "xray.api"), strs(x["api"]); !cmp.Equal(got, want) {
		t.Errorf("xray.api = %v, want %v", got, want)
	}
	if got, ok := r.c.ResolveAddr(sbA.ID, x["api"]); !ok || got != "xray.api" {
		t.Errorf("ResolveAddr(%s) from api = %q, %v; want xray.api", x["api"], got, ok)
	}
	if got, ok := r.c.ResolveAddr(sbA.ID, x["web"]); ok {
		t.Errorf("ResolveAddr of a web address from api = %q, want none", got)
	}
}

// Of the networks a sandbox shares with a name, the one with the higher
// gw-priority answers, then a network that leads out before an internal
// one, as libnetwork walks a sandbox's endpoints (Endpoint.Less).
func TestResolveOrderFollowsEndpointLess(t *testing.T) {
	r := newNameRig(t)
	ctx := context.Background()
	if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "aaa-internal", Internal: true}); err != nil {
		t.Fatal(err)
	}
	id := ctrID("c0ffeeyankee")
	sb := r.sandbox(t, id)
	addr := map[string]string{}
	for _, j := range []struct {
		net  string
		prio int
	}{{"api", 0}, {"web", 5}, {"aaa-internal", 9}} {
		ep := r.join(t, sb, j.net, JoinRequest{ContainerID: id, Name: "yankee", GwPriority: j.prio})
		addr[j.net] = ep.Address.Addr().String()
	}
	// aaa-internal has the highest priority: it answers first.
	if got := r.resolve(sb, "yankee"); !cmp.Equal(got, []string{addr["aaa-internal"]}) {
		t.Errorf("yankee = %v, want aaa-internal's %s (gw-priority 9)", got, addr["aaa-internal"])
	}
	if err := r.c.Leave(ctx, sb.ID, "aaa-internal"); err != nil {
		t.Fatal(err)
	}
	if got := r.resolve(sb, "yankee"); !cmp.Equal(got, []string{addr["web"]}) {
		t.Errorf("yankee = %v, want web's %s (gw-priority 5 before api's 0)", got, addr["web"])
	}
	if got, ok := r.c.ResolveAddr(sb.ID, netip.MustParseAddr(addr["web"])); !ok || got != "yankee.web" {
		t.Errorf("ResolveAddr(%s) = %q, %v; want yankee.web", addr["web"], got, ok)
	}
	// With equal priorities a network that leads out comes before an
	// internal one, whatever their names.
	id2 := ctrID("c0ffeezulu")
	sb2 := r.sandbox(t, id2)
	r.join(t, sb2, "aaa-internal", JoinRequest{ContainerID: id2, Name: "zulu"})
	ep2 := r.join(t, sb2, "web", JoinRequest{ContainerID: id2, Name: "zulu"})
	if got := r.resolve(sb2, "zulu"); !cmp.Equal(got, strs(ep2.Address.Addr())) {
		t.Errorf("zulu = %v, want web's %s before aaa-internal's", got, ep2.Address.Addr())
	}
}

func TestResolveFollowsLeaveJoinAndDelete(t *testing.T) {
	r := newNameRig(t)
	ctx := context.Background()
	sbA, _ := r.run("alpha", nil, "web")
	sbB, b := r.run("bravo", []string{"db"}, "web")
	_, c := r.run("charlie", []string{"db"}, "web")
	if err := r.c.Leave(ctx, sbB.ID, "web"); err != nil {
		t.Fatal(err)
	}
	if got := r.resolve(sbA, "bravo"); got != nil {
		t.Errorf("after Leave: bravo = %v, want nothing", got)
	}
	if got, want := r.resolve(sbA, "db"), strs(c["web"]); !cmp.Equal(got, want) {
		t.Errorf("after Leave: db = %v, want only charlie's %v", got, want)
	}
	if got, ok := r.c.ResolveAddr(sbA.ID, b["web"]); ok {
		t.Errorf("after Leave: PTR of bravo's old address = %q", got)
	}
	ep := r.join(t, sbB, "api", JoinRequest{ContainerID: sbB.ContainerID, Name: "bravo"})
	if got := r.resolve(sbA, "bravo"); got != nil {
		t.Errorf("bravo joined api only: alpha (web) resolves it to %v", got)
	}
	r.join(t, sbA, "api", JoinRequest{ContainerID: sbA.ContainerID, Name: "alpha"})
	if got, want := r.resolve(sbA, "bravo"), strs(ep.Address.Addr()); !cmp.Equal(got, want) {
		t.Errorf("after alpha joined api: bravo = %v, want %v", got, want)
	}
	if err := r.c.DeleteSandbox(ctx, sbB.ID); err != nil {
		t.Fatal(err)
	}
	if got := r.resolve(sbA, "bravo"); got != nil {
		t.Errorf("after DeleteSandbox: bravo = %v, want nothing", got)
	}
	if r.c.NameResolution(sbB.ID) || r.c.ExternalAccess(sbB.ID) {
		t.Errorf("a deleted sandbox still has name resolution or external access")
	}
}

func TestResolveSurvivesRestart(t *testing.T) {
	r := newNameRig(t)
	sbA, _ := r.run("alpha", nil, "web")
	_, b := r.run("bravo", []string{"db"}, "web")
	r.restart(t)
	if got, want := r.resolve(sbA, "db"), strs(b["web"]); !cmp.Equal(got, want) {
		t.Errorf("after restart: db = %v, want %v", got, want)
	}
	if got, ok := r.c.ResolveAddr(sbA.ID, b["web"]); !ok || got != "bravo.web" {
		t.Errorf("after restart: PTR = %q, %v", got, ok)
	}
}

func TestExternalAccess(t *testing.T) {
	r := newNameRig(t)
	if _, err := r.c.CreateNetwork(context.Background(), CreateRequest{Name: "sealed", Internal: true}); err != nil {
		t.Fatal(err)
	}
	sbI, _ := r.run("inside", nil, "sealed")
	sbW, _ := r.run("web1", nil, "web")
	sbBoth, _ := r.run("both", nil, "sealed", "bridge")
	for _, tt := range []struct {
		sb   *Sandbox
		want bool
	}{{sbI, false}, {sbW, true}, {sbBoth, true}} {
		if got := r.c.ExternalAccess(tt.sb.ID); got != tt.want {
			t.Errorf("ExternalAccess(%s) = %v, want %v", tt.sb.ContainerID[:12], got, tt.want)
		}
	}
	if got := r.resolve(sbBoth, "inside"); len(got) != 1 {
		t.Errorf("both resolves inside on the internal network = %v, want one address", got)
	}
}

// TestResolveConcurrent is for -race: readers never see a half-made entry.
func TestResolveConcurrent(t *testing.T) {
	r := newNameRig(t)
	sbA, _ := r.run("alpha", nil, "web")
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if addrs, ok := r.c.Resolve(sbA.ID, "db"); ok && len(addrs) == 0 {
					t.Error("ok without addresses")
					return
				}
				r.c.ResolveAddr(sbA.ID, netip.MustParseAddr("10.7.0.3"))
			}
		}()
	}
	for i := 0; i < 50; i++ {
		sb, _ := r.run("bravo", []string{"db"}, "web")
		if err := r.c.DeleteSandbox(ctx, sb.ID); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}

func TestResolveHostname(t *testing.T) {
	r := newNameRig(t)
	sbA, _ := r.run("alpha", nil, "web")
	sbB := r.sandbox(t, ctrID("b0b"))
	ep := r.join(t, sbB, "web", JoinRequest{ContainerID: ctrID("b0b"), Name: "bravo", Hostname: "Bravo-Host", Aliases: []string{"db"}})
	if got, want := r.resolve(sbA, "bravo-host"), strs(ep.Address.Addr()); !cmp.Equal(got, want) {
		t.Errorf("hostname: %v, want %v", got, want)
	}
	if got, ok := r.c.ResolveAddr(sbA.ID, ep.Address.Addr()); !ok || got != "bravo.web" {
		t.Errorf("PTR = %q, %v; want the container's name, bravo.web", got, ok)
	}
	if diff := cmp.Diff([]string{"bravo", "db", "b0b000000000", "bravo-host"}, dnsNames(ep)); diff != "" {
		t.Errorf("dnsNames (-want +got):\n%s", diff)
	}
}

// TestRenameSandbox: a renamed container answers to its new name at once,
// no longer to its old one, on every network it is on; the endpoints and
// the caller's record are written together and survive a restart.
func TestRenameSandbox(t *testing.T) {
	r := newNameRig(t)
	sbA, _ := r.run("alpha", nil, "web")
	sbB, b := r.run("bravo", []string{"db"}, "web", "api")
	sbC, _ := r.run("charlie", nil, "api")
	err := r.c.RenameSandbox(sbB.ID, "Bravo2", func(tx store.Tx) error {
		return tx.Put(store.BucketContainers, "c1", "renamed")
	})
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		for _, tc := range []struct {
			from *Sandbox
			name string
			want []string
		}{
			{sbA, "bravo2", strs(b["web"])},
			{sbA, "bravo", nil},
			{sbA, "db", strs(b["web"])}, // aliases stay
			{sbC, "bravo2", strs(b["api"])},
			{sbC, "bravo2.api", strs(b["api"])},
		} {
			if got := r.resolve(tc.from, tc.name); !cmp.Equal(got, tc.want) {
				t.Errorf("%s: Resolve(%q) = %v, want %v", when, tc.name, got, tc.want)
			}
		}
		if got, ok := r.c.ResolveAddr(sbA.ID, b["web"]); !ok || got != "bravo2.web" {
			t.Errorf("%s: PTR of %s = %q, %v; want bravo2.web", when, b["web"], got, ok)
		}
		api, err := r.c.Network("api")
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, ep := range r.c.Endpoints(api.ID) {
			if ep.SandboxID == sbB.ID {
				found = true
				if ep.Name != "Bravo2" {
					t.Errorf("%s: endpoint name %q, want Bravo2 (as given, for network inspect)", when, ep.Name)
				}
			}
		}
		if !found {
			t.Errorf("%s: the renamed sandbox has no endpoint on api", when)
		}
		var v string
		if err := r.st.View(func(tx store.Tx) error { return tx.Get(store.BucketContainers, "c1", &v) }); err != nil || v != "renamed" {
			t.Errorf("%s: the caller's record = %q, %v", when, v, err)
		}
	}
	check("after rename")
	r.restart(t)
	check("after restart")
}

// TestResolveLinkAliases: a link alias (EndpointSettings.Links) resolves
// only for the container holding it, to what its target resolves to on
// the link's network; it hides a container of the alias's name from that
// container alone, as libnetwork's ResolveName does.
func TestResolveLinkAliases(t *testing.T) {
	r := newNameRig(t)
	_, db := r.run("db", nil, "web")
	_, cache := r.run("cache", nil, "web")
	_, apiDB := r.run("apidb", nil, "api")
	id := ctrID("c0ffeeweb")
	sbWeb := r.sandbox(t, id)
	r.join(t, sbWeb, "web", JoinRequest{ContainerID: id, Name: "webapp", Links: []string{"db:database", "DB:Cache", "ghost:phantom", "db"}})
	r.join(t, sbWeb, "api", JoinRequest{ContainerID: id, Name: "webapp", Links: []string{"apidb:store"}})
	sbOther, _ := r.run("other", nil, "web", "api")
	tests := []struct {
		sb         *Sandbox
		name       string
		want       []string
		whoAndWhat string
	}{
		{sbWeb, "database", strs(db["web"]), "alias → target on the link's network"},
		{sbWeb, "DATABASE.web", strs(db["web"]), "alias with the network's name"},
		{sbWeb, "database.api", nil, "alias on another network"},
		{sbWeb, "cache", strs(db["web"]), "an alias hides the container of that name"},
		{sbWeb, "store", strs(apiDB["api"]), "alias on the second network"},
		{sbWeb, "phantom", nil, "alias of a container that does not exist"},
		{sbWeb, "db", strs(db["web"]), "name:name link"},
		{sbOther, "database", nil, "another container does not see the alias"},
		{sbOther, "cache", strs(cache["web"]), "nor is the name hidden from it"},
	}
	for _, tt := range tests {
		if got := r.resolve(tt.sb, tt.name); !slices.Equal(got, tt.want) {
			t.Errorf("%s: Resolve(%q) = %v, want %v", tt.whoAndWhat, tt.name, got, tt.want)
		}
	}
}
