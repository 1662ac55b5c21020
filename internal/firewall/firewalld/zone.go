// Package firewalld keeps berth's bridges in firewalld's trusted zone
// while firewalld runs in the daemon's network namespace. netavark puts
// its networks' subnets in that zone, and Docker its bridges in a zone of
// its own.
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
// it is reloaded (with its default FlushAllOnReload) or restarted; it
// says so on D-Bus, and berth binds its bridges again. A bridge the
// administrator put in another zone stays there; a bridge of berth's
// found in the trusted zone is taken as berth's binding (so a daemon
// restarted in between still unbinds it with its network).
//
// No network operation waits for firewalld: Zoner records what is wanted
// and a background loop (Run) brings firewalld's bindings in line, again
// after every change and retrying with back-off after a failure, so a
// firewalld or bus that does not answer delays nothing but itself.
// Zoner (here) is the logic, over the Service interface; dbus_linux.go
// is the D-Bus client.
package firewalld

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/berth-net/berth/internal/firewall"
)

// Zone is the zone berth binds its bridges to.
const Zone = "trusted"

// ErrNotManaged is a Service's answer while firewalld does not run in
// the daemon's network namespace (not running, not ready yet, or another
// namespace's).
var ErrNotManaged = errors.New("firewalld does not manage this network namespace")

// ErrNotKnown is a Service's answer before it knows whether firewalld
// runs in the namespace (the bus not reached yet): nothing is done, and
// nothing is forgotten, until it does.
var ErrNotKnown = errors.New("firewalld's state is not known yet")

// Service is what a Zoner needs of firewalld, at runtime.
type Service interface {
	// ZoneOf returns the zone iface is bound to ("" none).
	ZoneOf(ctx context.Context, iface string) (string, error)
	// Bind binds iface to zone.
	Bind(ctx context.Context, zone, iface string) error
	// Unbind takes iface out of zone; an interface not bound there is
	// not an error.
	Unbind(ctx context.Context, zone, iface string) error
}

// Zoner is a firewall.Firewall that also keeps the bridges of the
// networks it is given in Zone (see Sync and Run). firewalld's answers
// never fail a network operation: a bridge firewalld cannot take is
// logged, and docker info's warnings (nftables.ForwardBlockers) say what
// firewalld still drops.
type Zoner struct {
	firewall.Firewall
	svc Service
	log *slog.Logger

	mu sync.Mutex
	// want are the bridges of berth's networks; gone those of networks
	// removed, to unbind once Sync gets to them.
	want, gone map[string]bool
	// elsewhere are bridges found in another zone, each logged once.
	elsewhere map[string]string
	kick      chan struct{}
}

// NewZoner wraps fw.
func NewZoner(fw firewall.Firewall, svc Service, log *slog.Logger) *Zoner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Zoner{Firewall: fw, svc: svc, log: log, want: map[string]bool{}, gone: map[string]bool{},
		elsewhere: map[string]string{}, kick: make(chan struct{}, 1)}
}

// Rebuild rebuilds berth's table; the bridges of nets are then wanted in
// Zone, and the others berth had are not.
func (z *Zoner) Rebuild(ctx context.Context, nets []firewall.Network, ports ...firewall.PortMapping) error {
	err := z.Firewall.Rebuild(ctx, nets, ports...)
	z.mu.Lock()
	keep := map[string]bool{}
	for _, n := range nets {
		keep[n.Bridge] = true
		delete(z.gone, n.Bridge)
	}
	for br := range z.want {
		if !keep[br] {
			z.gone[br] = true
		}
	}
	z.want = keep
	z.mu.Unlock()
	z.Kick()
	return err
}

// Restore restores the wrapped firewall's table (firewall.Restorer); the
// bridges wanted in Zone stay as they are.
func (z *Zoner) Restore(ctx context.Context) error {
	r, ok := z.Firewall.(firewall.Restorer)
	if !ok {
		return firewall.ErrNothingToRestore
	}
	return r.Restore(ctx)
}

// AddNetwork adds n's rules; its bridge is then wanted in Zone.
func (z *Zoner) AddNetwork(ctx context.Context, n firewall.Network) error {
	if err := z.Firewall.AddNetwork(ctx, n); err != nil {
		return err
	}
	z.mu.Lock()
	z.want[n.Bridge] = true
	delete(z.gone, n.Bridge)
	z.mu.Unlock()
	z.Kick()
	return nil
}

// DelNetwork removes n's rules; its bridge is then unbound, if it is in
// Zone.
func (z *Zoner) DelNetwork(ctx context.Context, n firewall.Network) error {
	err := z.Firewall.DelNetwork(ctx, n)
	z.mu.Lock()
	delete(z.want, n.Bridge)
	z.gone[n.Bridge] = true
	z.mu.Unlock()
	z.Kick()
	return err
}

// ForgetBridge unbinds bridge br, if it is in Zone and no network of
// berth's has it: a device berth deleted that no network names any more
// (network.BridgeForgetter), which a daemon started again never bound.
func (z *Zoner) ForgetBridge(br string) {
	z.mu.Lock()
	if !z.want[br] {
		z.gone[br] = true
	}
	z.mu.Unlock()
	z.Kick()
}

// Kick has Run sync soon: after a change of berth's networks, or of
// firewalld (a reload, a start).
func (z *Zoner) Kick() {
	select {
	case z.kick <- struct{}{}:
	default:
	}
}

// Run syncs after every Kick until ctx ends; a failed sync is tried again
// with back-off (1 s, doubling to 30 s) until one succeeds.
func (z *Zoner) Run(ctx context.Context) {
	const first, most = time.Second, 30 * time.Second
	backoff := first
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-z.kick:
		case <-retry:
		}
		if err := z.Sync(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			z.log.Warn("firewalld: cannot bind berth's bridges yet; will retry", "in", backoff, "err", err)
			retry = time.After(backoff)
			backoff = min(2*backoff, most)
			continue
		}
		retry, backoff = nil, first
	}
}

// Sync brings firewalld's bindings in line with what is wanted: a wanted
// bridge in no zone is bound to Zone (one in another zone is left there),
// and a gone bridge in Zone is unbound. Without a firewalld of the
// daemon's namespace there is nothing to do (its start kicks a sync).
// Other errors are gathered, each bridge tried, for Run to try again.
func (z *Zoner) Sync(ctx context.Context) error {
	z.mu.Lock()
	want := slices.Sorted(maps.Keys(z.want))
	gone := slices.Sorted(maps.Keys(z.gone))
	z.mu.Unlock()
	var errs []error
	for _, br := range gone {
		zone, err := z.svc.ZoneOf(ctx, br)
		if err == nil && zone == Zone {
			err = z.svc.Unbind(ctx, Zone, br)
		}
		switch {
		case errors.Is(err, ErrNotKnown):
			return nil // the client's first word kicks a sync
		case errors.Is(err, ErrNotManaged):
			// no firewalld of this namespace holds a binding
		case err != nil:
			errs = append(errs, fmt.Errorf("unbind %s: %w", br, err))
			continue
		}
		z.mu.Lock()
		if !z.want[br] {
			delete(z.gone, br)
			delete(z.elsewhere, br)
		}
		z.mu.Unlock()
	}
	for _, br := range want {
		zone, err := z.svc.ZoneOf(ctx, br)
		switch {
		case errors.Is(err, ErrNotManaged), errors.Is(err, ErrNotKnown):
			return errors.Join(errs...)
		case err != nil:
			errs = append(errs, fmt.Errorf("zone of %s: %w", br, err))
			continue
		case zone == Zone:
			continue
		case zone != "":
			z.mu.Lock()
			if z.elsewhere[br] != zone {
				z.elsewhere[br] = zone
				z.log.Info("firewalld: the bridge is in another zone; berth leaves it there", "bridge", br, "zone", zone)
			}
			z.mu.Unlock()
			continue
		}
		if err := z.svc.Bind(ctx, Zone, br); err != nil {
			if errors.Is(err, ErrNotManaged) || errors.Is(err, ErrNotKnown) {
				return errors.Join(errs...)
			}
			errs = append(errs, fmt.Errorf("bind %s: %w", br, err))
			continue
		}
		z.log.Info("firewalld: bridge bound to the trusted zone", "bridge", br)
	}
	return errors.Join(errs...)
}
