package network

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// HostRoute is a route of the host's namespace, as a route watcher saw it.
type HostRoute struct {
	Dst   netip.Prefix
	Dev   string // the route's output interface; "" if it has none (blackhole, multipath)
	Table int
}

func (r HostRoute) String() string {
	s := "route " + r.Dst.String()
	if r.Dev != "" {
		s += " dev " + r.Dev
	}
	if r.Table != 0 && r.Table != 254 {
		s += fmt.Sprintf(" table %d", r.Table)
	}
	return s
}

// NoteHostRoute checks a route that appeared in the host against every
// bridge network and returns a warning for each network it newly overlaps
// (a route seen again returns nothing); the warnings also show in the
// networks' Warnings until the route goes away.
// A host route that overlaps a network (a VPN coming up with 172.18.0.0/24)
// takes packets away from the bridge or sends the bridge's traffic into
// the tunnel, and nothing in the kernel says so. Routes on the network's
// own bridge, default routes and catch-alls (catchAll), and host routes
// of the local table are berth's or harmless and are ignored. IPv6 routes are checked against
// the networks' IPv6 subnets alike; link-local and multicast ones, which
// every IPv6 link has, never overlap one.
func (c *Controller) NoteHostRoute(r HostRoute) []string {
	if !r.Dst.IsValid() || catchAll(r.Dst) || r.Table == 255 {
		return nil
	}
	r.Dst = r.Dst.Masked()
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, n := range c.networks {
		if n.Driver != DriverBridge || n.Bridge == nil || n.Bridge.Name == r.Dev {
			continue
		}
		cfg := n.IPv4
		if r.Dst.Addr().Is6() {
			cfg = n.IPv6
		}
		if cfg == nil || !cfg.Subnet.Overlaps(r.Dst) {
			continue
		}
		w := fmt.Sprintf("%s overlaps network %q (%s): traffic for those addresses may not reach its containers; remove the route or move the network to another subnet",
			r, n.Name, cfg.Subnet)
		if !slices.Contains(n.Warnings, w) {
			n.Warnings = append(n.Warnings, w)
			out = append(out, w)
		}
	}
	c.publishNetworksLocked()
	slices.Sort(out)
	return out
}

// catchAll says whether a route's destination is broader than /8: the
// default route, or a stand-in for it, such as the halves a full-tunnel
// VPN sets beside the default route (OpenVPN's 0.0.0.0/1 and
// 128.0.0.0/1, and for IPv6 ::/3, 2000::/4, 3000::/4, fc00::/7). Such a
// route covers every address pool, as the default route does, and no
// subnet can avoid it; like the default route, it loses to the bridge's
// own, longer, route. moby has ignored routes with a gateway since v23
// for this reason (moby#42598); berth keeps every narrower route, in
// every table, so that a site's network reached through a VPN or a
// router is still avoided.
func catchAll(p netip.Prefix) bool { return p.Bits() < 8 }

// ForgetHostRoute drops the warnings a route caused, once it is deleted,
// and returns the names of the networks that no longer carry them. A route
// without a device (its link is already gone) matches on destination and
// table alone.
func (c *Controller) ForgetHostRoute(r HostRoute) []string {
	if !r.Dst.IsValid() {
		return nil
	}
	r.Dst = r.Dst.Masked()
	return c.dropWarnings(func(w string) bool { return warnedRoute(w, r) })
}

// ForgetRoutesVia drops the warnings about routes through the interface
// dev, which is gone, and returns the networks that lost one. Deleting an
// interface takes its routes with it, and for IPv4 the kernel sends no
// route deletion for them: without this, the warning of a VPN's route
// would stay until the next start once its tun device went away.
func (c *Controller) ForgetRoutesVia(dev string) []string {
	if dev == "" {
		return nil
	}
	return c.dropWarnings(func(w string) bool { return warnedVia(w, dev) })
}

// dropWarnings deletes the networks' warnings that match says to and
// returns the names of the networks that lost one, sorted.
func (c *Controller) dropWarnings(match func(string) bool) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var cleared []string
	for _, n := range c.networks {
		before := len(n.Warnings)
		n.Warnings = slices.DeleteFunc(n.Warnings, match)
		if len(n.Warnings) != before {
			cleared = append(cleared, n.Name)
		}
		if len(n.Warnings) == 0 {
			n.Warnings = nil
		}
	}
	if len(cleared) > 0 {
		c.publishNetworksLocked()
	}
	slices.Sort(cleared)
	return cleared
}

// SubnetRouteOwner names the bridge network whose own subnet route r is
// (through its bridge, in the main table), or ok false. A deletion of
// such a route that berth did not make is damage to mend (HealBridge puts
// it back): a network being removed is not asked about.
func (c *Controller) SubnetRouteOwner(r HostRoute) (networkID string, ok bool) {
	if !r.Dst.IsValid() || r.Dev == "" || (r.Table != 0 && r.Table != 254) {
		return "", false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, n := range c.networks {
		if n.Driver != DriverBridge || n.Bridge == nil || n.Bridge.Name != r.Dev || n.Removing {
			continue
		}
		for _, cfg := range []*IPConfig{n.IPv4, n.IPv6} {
			if cfg != nil && cfg.Subnet.Masked() == r.Dst.Masked() {
				return n.ID, true
			}
		}
	}
	return "", false
}

// warnedVia reports whether warning w is about a route through dev.
func warnedVia(w, dev string) bool {
	head, _, ok := strings.Cut(w, " overlaps ")
	if !ok {
		return false
	}
	_, rest, ok := strings.Cut(head, " dev ")
	if !ok {
		return false
	}
	name, _, _ := strings.Cut(rest, " ")
	return name == dev
}

// warnedRoute reports whether warning w is about route r.
func warnedRoute(w string, r HostRoute) bool {
	head, _, ok := strings.Cut(w, " overlaps ")
	if !ok {
		return false
	}
	if r.Dev == "" {
		head = withoutDev(head)
	}
	return head == r.String()
}

// withoutDev drops " dev NAME" from a route's text.
func withoutDev(s string) string {
	before, rest, ok := strings.Cut(s, " dev ")
	if !ok {
		return s
	}
	if _, after, found := strings.Cut(rest, " "); found {
		return before + " " + after
	}
	return before
}
