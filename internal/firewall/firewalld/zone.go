// Package firewalld keeps berth's bridges in firewalld's trusted zone
// while firewalld runs in the daemon's network namespace, as netavark
// puts its networks in that zone and Docker its bridges in a zone of its
// own.
//
// Why it is needed: firewalld's forward chain (table inet firewalld)
// ends in a reject for traffic from an interface that is in no zone
// allowing it, and in nftables another table's reject is final, whatever
// berth's own table accepts; so on a host running firewalld (Fedora, RHEL
// and their kin) a container could not reach the outside world. The
// trusted zone accepts what comes from its interfaces; published ports
// come in through firewalld's own "ct status dnat accept". berth's own
// drops (isolation between networks, the host's services, internal
// networks) are in berth's table and hold whatever firewalld accepts.
//
// The binding is runtime only: berth never writes firewalld's permanent
// configuration (Docker creates a "docker" zone and a policy there, and
// reloads firewalld to load them). firewalld forgets runtime bindings when
// it is reloaded or restarted; it says so on D-Bus (Reloaded, or a new
// owner of its name), and berth binds its bridges again. A bridge the
// administrator put in a zone stays there: berth binds only bridges that
// are in no zone, and unbinds only those it bound.
//
// Zoner (here) is the logic, over the Service interface; dbus_linux.go
// is the D-Bus client.
package firewalld

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"

	"github.com/berth-net/berth/internal/firewall"
)

// Zone is the zone berth binds its bridges to.
const Zone = "trusted"

// ErrNotManaged is a Service's answer while firewalld does not run in
// the daemon's network namespace (not running, or another namespace's).
var ErrNotManaged = errors.New("firewalld does not manage this network namespace")

// Service is what a Zoner needs of firewalld, at runtime.
type Service interface {
	// ZoneOf returns the zone iface is bound to ("" none).
	ZoneOf(iface string) (string, error)
	// Bind binds iface to zone.
	Bind(zone, iface string) error
	// Unbind takes iface out of zone; an interface not bound there is
	// not an error.
	Unbind(zone, iface string) error
}

// Zoner is a firewall.Firewall that also keeps the bridges of the
// networks it is given in Zone. firewalld's answers never fail a network
// operation: a bridge firewalld cannot take is logged, and docker info's
// warnings (nftables.ForwardBlockers) say what firewalld still drops.
type Zoner struct {
	firewall.Firewall
	svc Service
	log *slog.Logger

	mu sync.Mutex
	// want are the bridges of berth's networks; ours those of them berth
	// bound (firewalld may have forgotten them since: see Resync).
	want map[string]bool
	ours map[string]bool
}

// NewZoner wraps fw.
func NewZoner(fw firewall.Firewall, svc Service, log *slog.Logger) *Zoner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Zoner{Firewall: fw, svc: svc, log: log, want: map[string]bool{}, ours: map[string]bool{}}
}

// Rebuild rebuilds berth's table, then binds the bridges of nets and
// unbinds those berth bound for networks that are gone.
func (z *Zoner) Rebuild(ctx context.Context, nets []firewall.Network, ports ...firewall.PortMapping) error {
	err := z.Firewall.Rebuild(ctx, nets, ports...)
	z.mu.Lock()
	defer z.mu.Unlock()
	keep := map[string]bool{}
	for _, n := range nets {
		keep[n.Bridge] = true
	}
	for br := range z.want {
		if !keep[br] {
			z.unbindLocked(br)
		}
	}
	for _, br := range slices.Sorted(maps.Keys(keep)) {
		z.bindLocked(br)
	}
	return err
}

// AddNetwork adds n's rules and binds its bridge.
func (z *Zoner) AddNetwork(ctx context.Context, n firewall.Network) error {
	if err := z.Firewall.AddNetwork(ctx, n); err != nil {
		return err
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	z.bindLocked(n.Bridge)
	return nil
}

// DelNetwork removes n's rules and unbinds its bridge if berth bound it.
func (z *Zoner) DelNetwork(ctx context.Context, n firewall.Network) error {
	err := z.Firewall.DelNetwork(ctx, n)
	z.mu.Lock()
	defer z.mu.Unlock()
	z.unbindLocked(n.Bridge)
	return err
}

// Resync binds every bridge again, after firewalld forgot its runtime
// bindings (a reload, a restart) or started in the daemon's namespace.
func (z *Zoner) Resync() {
	z.mu.Lock()
	defer z.mu.Unlock()
	clear(z.ours)
	for _, br := range slices.Sorted(maps.Keys(z.want)) {
		z.bindLocked(br)
	}
}

// Bound returns the bridges berth has bound, sorted.
func (z *Zoner) Bound() []string {
	z.mu.Lock()
	defer z.mu.Unlock()
	return slices.Sorted(maps.Keys(z.ours))
}

// bindLocked binds br unless it is in a zone already: berth's own
// binding of it (kept), or the administrator's (respected).
func (z *Zoner) bindLocked(br string) {
	z.want[br] = true
	zone, err := z.svc.ZoneOf(br)
	switch {
	case errors.Is(err, ErrNotManaged):
		return
	case err != nil:
		z.log.Warn("firewalld: cannot read the zone of a bridge", "bridge", br, "err", err)
		return
	case zone == Zone && z.ours[br]:
		return
	case zone != "":
		if !z.ours[br] {
			z.log.Info("firewalld: the bridge is in a zone already; berth leaves it there", "bridge", br, "zone", zone)
		}
		return
	}
	if err := z.svc.Bind(Zone, br); err != nil {
		if !errors.Is(err, ErrNotManaged) {
			z.log.Warn("firewalld: cannot bind a bridge to the trusted zone; its forwarded traffic may be rejected", "bridge", br, "err", err)
		}
		return
	}
	z.ours[br] = true
	z.log.Info("firewalld: bridge bound to the trusted zone", "bridge", br)
}

// unbindLocked forgets br, and unbinds it if berth bound it.
func (z *Zoner) unbindLocked(br string) {
	delete(z.want, br)
	if !z.ours[br] {
		return
	}
	delete(z.ours, br)
	if err := z.svc.Unbind(Zone, br); err != nil && !errors.Is(err, ErrNotManaged) {
		z.log.Warn("firewalld: cannot unbind a bridge", "bridge", br, "err", err)
	}
}
