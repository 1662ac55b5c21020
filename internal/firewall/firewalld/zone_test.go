package firewalld

import (
	"context"
	"net/netip"
	"slices"
	"testing"

	"github.com/berth-net/berth/internal/firewall"
)

// fakeService is firewalld's runtime zone bindings, as a map; managed
// false answers ErrNotManaged, as a Client does for another namespace.
type fakeService struct {
	managed bool
	zones   map[string]string // interface → zone
	calls   []string
}

func newFake() *fakeService { return &fakeService{managed: true, zones: map[string]string{}} }

func (f *fakeService) ZoneOf(iface string) (string, error) {
	if !f.managed {
		return "", ErrNotManaged
	}
	return f.zones[iface], nil
}

func (f *fakeService) Bind(zone, iface string) error {
	if !f.managed {
		return ErrNotManaged
	}
	f.calls = append(f.calls, "bind "+iface)
	f.zones[iface] = zone
	return nil
}

func (f *fakeService) Unbind(zone, iface string) error {
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
	if got := z.Bound(); !slices.Equal(got, []string{"berth0", "br-a"}) {
		t.Errorf("bound %v after the rebuild", got)
	}
	if err := z.AddNetwork(ctx, network("br-b")); err != nil {
		t.Fatal(err)
	}
	if err := z.DelNetwork(ctx, network("br-a")); err != nil {
		t.Fatal(err)
	}
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
	if err := z.Rebuild(ctx, nets("berth0")); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(svc.calls, []string{"unbind br-b"}) {
		t.Errorf("calls %v, want one unbind of br-b", svc.calls)
	}
}

// TestZonerLeavesAdministratorsZones: a bridge the administrator bound
// to a zone stays there, and berth never unbinds it.
func TestZonerLeavesAdministratorsZones(t *testing.T) {
	ctx := context.Background()
	svc := newFake()
	svc.zones["br-lab"] = "internal"
	z := NewZoner(firewall.NewFake(), svc, nil)
	if err := z.AddNetwork(ctx, network("br-lab")); err != nil {
		t.Fatal(err)
	}
	if err := z.DelNetwork(ctx, network("br-lab")); err != nil {
		t.Fatal(err)
	}
	if svc.zones["br-lab"] != "internal" || len(svc.calls) != 0 {
		t.Errorf("zones %v, calls %v: the administrator's zone was touched", svc.zones, svc.calls)
	}
}

// TestZonerResync: firewalld forgets runtime bindings at a reload; a
// resync binds every bridge again. Without a firewalld of the daemon's
// namespace nothing is bound, and its start binds them all.
func TestZonerResync(t *testing.T) {
	ctx := context.Background()
	svc := newFake()
	svc.managed = false
	z := NewZoner(firewall.NewFake(), svc, nil)
	if err := z.Rebuild(ctx, nets("berth0", "br-a")); err != nil {
		t.Fatal(err)
	}
	if got := z.Bound(); len(got) != 0 {
		t.Errorf("bound %v with no firewalld", got)
	}
	svc.managed = true // started
	z.Resync()
	if svc.zones["berth0"] != Zone || svc.zones["br-a"] != Zone {
		t.Errorf("zones %v after firewalld started", svc.zones)
	}
	clear(svc.zones) // reloaded
	z.Resync()
	if svc.zones["berth0"] != Zone || svc.zones["br-a"] != Zone {
		t.Errorf("zones %v after a reload", svc.zones)
	}
	if err := z.DelNetwork(ctx, network("br-a")); err != nil {
		t.Fatal(err)
	}
	if _, ok := svc.zones["br-a"]; ok {
		t.Errorf("br-a still bound after its network went")
	}
}
