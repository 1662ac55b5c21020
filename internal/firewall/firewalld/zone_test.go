package firewalld

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/firewall"
)

// fakeService is firewalld's runtime zone bindings, as a map; managed
// false answers ErrNotManaged, as a Client does for another namespace;
// block, when set, holds every call until it is closed or ctx ends.
type fakeService struct {
	mu      sync.Mutex
	managed bool
	unknown bool              // ErrNotKnown for every call
	zones   map[string]string // interface → zone
	calls   []string
	block   chan struct{}
}

func newFake() *fakeService { return &fakeService{managed: true, zones: map[string]string{}} }

func (f *fakeService) wait(ctx context.Context) error {
	if f.block == nil {
		return nil
	}
	select {
	case <-f.block:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeService) ZoneOf(ctx context.Context, iface string) (string, error) {
	if err := f.wait(ctx); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.unknown {
		return "", ErrNotKnown
	}
	if !f.managed {
		return "", ErrNotManaged
	}
	return f.zones[iface], nil
}

// zone is ZoneOf for the test's goroutine.
func (f *fakeService) zone(iface string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.zones[iface]
}

func (f *fakeService) Bind(ctx context.Context, zone, iface string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.managed {
		return ErrNotManaged
	}
	f.calls = append(f.calls, "bind "+iface)
	f.zones[iface] = zone
	return nil
}

func (f *fakeService) Unbind(ctx context.Context, zone, iface string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.managed {
		return ErrNotManaged
	}
	f.calls = append(f.calls, "unbind "+iface)
	if f.zones[iface] == zone {
		delete(f.zones, iface)
	}
	return nil
}

func nets(bridges ...string) []firewall.Network {
	var out []firewall.Network
	for _, b := range bridges {
		out = append(out, network(b))
	}
	return out
}

// network is a network of bridge b, with a subnet of its own.
func network(b string) firewall.Network {
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	return firewall.Network{Bridge: b, Subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(sum), 0, 0}), 24)}
}

func mustSync(t *testing.T, z *Zoner) {
	t.Helper()
	if err := z.Sync(context.Background()); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

// TestZonerBindsBridges: a rebuild binds every bridge in no zone and
// unbinds those of networks gone; a network's add and delete bind and
// unbind its bridge; the rules go to the wrapped firewall either way.
func TestZonerBindsBridges(t *testing.T) {
	ctx := context.Background()
	svc, fw := newFake(), firewall.NewFake()
	z := NewZoner(fw, svc, nil)
	if err := z.Rebuild(ctx, nets("berth0", "br-a")); err != nil {
		t.Fatal(err)
	}
	mustSync(t, z)
	if svc.zones["berth0"] != Zone || svc.zones["br-a"] != Zone {
		t.Errorf("zones %v after the rebuild", svc.zones)
	}
	if err := z.AddNetwork(ctx, network("br-b")); err != nil {
		t.Fatal(err)
	}
	if err := z.DelNetwork(ctx, network("br-a")); err != nil {
		t.Fatal(err)
	}
	mustSync(t, z)
	if svc.zones["br-b"] != Zone || svc.zones["br-a"] != "" || svc.zones["berth0"] != Zone {
		t.Errorf("zones %v", svc.zones)
	}
	if got := len(fw.Networks()); got != 2 {
		t.Errorf("%d networks in the wrapped firewall, want 2", got)
	}
	// A rebuild without br-b unbinds it; one with the same bridges binds nothing again.
	svc.calls = nil
	if err := z.Rebuild(ctx, nets("berth0")); err != nil {
		t.Fatal(err)
	}
	mustSync(t, z)
	if err := z.Rebuild(ctx, nets("berth0")); err != nil {
		t.Fatal(err)
	}
	mustSync(t, z)
	if !slices.Equal(svc.calls, []string{"unbind br-b"}) {
		t.Errorf("calls %v, want one unbind of br-b", svc.calls)
	}
}

// TestZonerAfterRestart: a daemon started again finds its bridges in the
// trusted zone, takes them as its own bindings, and unbinds them with
// their network.
func TestZonerAfterRestart(t *testing.T) {
	ctx := context.Background()
	svc := newFake()
	svc.zones["berth0"], svc.zones["br-a"] = Zone, Zone // the last daemon's
	z := NewZoner(firewall.NewFake(), svc, nil)
	if err := z.Rebuild(ctx, nets("berth0", "br-a")); err != nil {
		t.Fatal(err)
	}
	mustSync(t, z)
	if err := z.DelNetwork(ctx, network("br-a")); err != nil {
		t.Fatal(err)
	}
	mustSync(t, z)
	if _, ok := svc.zones["br-a"]; ok || !slices.Equal(svc.calls, []string{"unbind br-a"}) {
		t.Errorf("zones %v, calls %v: br-a still bound after its network went", svc.zones, svc.calls)
	}
}

// TestZonerForgetsBridges: a bridge berth deleted that no network names
// (the old name of a renamed default bridge, bound by an earlier daemon)
// is unbound; one a network has is kept.
func TestZonerForgetsBridges(t *testing.T) {
	ctx := context.Background()
	svc := newFake()
	svc.zones["berth0"], svc.zones["br-new"] = Zone, Zone
	z := NewZoner(firewall.NewFake(), svc, nil)
	if err := z.Rebuild(ctx, nets("br-new")); err != nil {
		t.Fatal(err)
	}
	z.ForgetBridge("berth0")
	z.ForgetBridge("br-new")
	mustSync(t, z)
	if _, ok := svc.zones["berth0"]; ok || svc.zones["br-new"] != Zone {
		t.Errorf("zones %v, want berth0 unbound and br-new kept", svc.zones)
	}
}

// TestZonerLeavesAdministratorsZones: a bridge the administrator bound
// to another zone stays there, and berth never unbinds it.
func TestZonerLeavesAdministratorsZones(t *testing.T) {
	ctx := context.Background()
	svc := newFake()
	svc.zones["br-lab"] = "internal"
	z := NewZoner(firewall.NewFake(), svc, nil)
	if err := z.AddNetwork(ctx, network("br-lab")); err != nil {
		t.Fatal(err)
	}
	mustSync(t, z)
	if err := z.DelNetwork(ctx, network("br-lab")); err != nil {
		t.Fatal(err)
	}
	mustSync(t, z)
	if svc.zones["br-lab"] != "internal" || len(svc.calls) != 0 {
		t.Errorf("zones %v, calls %v: the administrator's zone was touched", svc.zones, svc.calls)
	}
}

// TestZonerReloadAndStart: firewalld forgets runtime bindings at a
// reload; the next sync binds every bridge again. Without a firewalld of
// the daemon's namespace nothing is bound, and once it runs a sync binds
// them all.
func TestZonerReloadAndStart(t *testing.T) {
	ctx := context.Background()
	svc := newFake()
	svc.managed = false
	z := NewZoner(firewall.NewFake(), svc, nil)
	if err := z.Rebuild(ctx, nets("berth0", "br-a")); err != nil {
		t.Fatal(err)
	}
	mustSync(t, z)
	if len(svc.zones) != 0 {
		t.Errorf("zones %v with no firewalld", svc.zones)
	}
	svc.managed = true // started
	mustSync(t, z)
	if svc.zones["berth0"] != Zone || svc.zones["br-a"] != Zone {
		t.Errorf("zones %v after firewalld started", svc.zones)
	}
	clear(svc.zones) // reloaded
	mustSync(t, z)
	if svc.zones["berth0"] != Zone || svc.zones["br-a"] != Zone {
		t.Errorf("zones %v after a reload", svc.zones)
	}
}

// TestZonerWaitsForTheFirstWord: until the client knows whether
// firewalld runs, a removed network's bridge is kept to unbind.
func TestZonerWaitsForTheFirstWord(t *testing.T) {
	ctx := context.Background()
	svc := newFake()
	svc.zones["br-a"] = Zone
	svc.unknown = true
	z := NewZoner(firewall.NewFake(), svc, nil)
	if err := z.Rebuild(ctx, nets("br-a")); err != nil {
		t.Fatal(err)
	}
	if err := z.DelNetwork(ctx, network("br-a")); err != nil {
		t.Fatal(err)
	}
	mustSync(t, z)
	svc.unknown = false // the client's first word: firewalld runs
	mustSync(t, z)
	if _, ok := svc.zones["br-a"]; ok {
		t.Errorf("br-a still bound: its removal was forgotten before firewalld's state was known")
	}
}

// TestZonerNeverWaits: a firewalld that does not answer holds up no
// network operation; Run retries until it answers, then binds.
func TestZonerNeverWaits(t *testing.T) {
	svc := newFake()
	svc.block = make(chan struct{})
	z := NewZoner(firewall.NewFake(), svc, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go z.Run(ctx)
	done := make(chan error, 1)
	go func() { done <- z.AddNetwork(ctx, network("br-a")) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("AddNetwork waited for firewalld")
	}
	short, stop := context.WithTimeout(ctx, 50*time.Millisecond)
	defer stop()
	if err := z.Sync(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Sync against a firewalld that does not answer: %v, want its deadline", err)
	}
	close(svc.block) // it answers now
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		z.Kick()
		if svc.zone("br-a") == Zone {
			return
		}
	}
	t.Error("br-a never bound once firewalld answered")
}

// restorer is a firewall that can restore its table.
type restorer struct {
	firewall.Firewall
	restored bool
}

func (r *restorer) Restore(context.Context) error { r.restored = true; return nil }

// TestZonerRestores: the Zoner passes a heal's Restore to the firewall it
// wraps, or says it cannot when that one cannot (the network core then
// rebuilds from its records).
func TestZonerRestores(t *testing.T) {
	r := &restorer{Firewall: firewall.NewFake()}
	if err := NewZoner(r, newFake(), nil).Restore(context.Background()); err != nil || !r.restored {
		t.Errorf("Restore through the Zoner: %v, restored %v", err, r.restored)
	}
	if err := NewZoner(firewall.NewFake(), newFake(), nil).Restore(context.Background()); !errors.Is(err, firewall.ErrNothingToRestore) {
		t.Errorf("Restore of a firewall that cannot: %v", err)
	}
}
