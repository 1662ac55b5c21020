package bridge

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/driverapi"
	"github.com/berth-net/berth/internal/errdefs"
)

// EnsureBridge makes the bridge of spec exist, tagged as owner's, with its
// MTU, the gateway address (none on an IPv6-only network) and the link
// up; for a network with IPv6
// (spec.Gateway6) also IPv6 on the bridge, its IPv6 gateway address and
// IPv6 forwarding in the host namespace. Each step first looks at what is
// there, so a second call changes nothing, and a bridge found at a restart
// gets back what it lost. With no port the bridge stays NO-CARRIER, as
// Docker's does.
func (d *Driver) EnsureBridge(spec driverapi.BridgeSpec, owner string) error {
	if err := validateBridgeSpec(spec, owner); err != nil {
		return err
	}
	br, created, err := d.ensureBridgeLink(spec, owner)
	if err != nil {
		return err
	}
	if err := d.ensureOwned(br, owner); err != nil {
		return err
	}
	if err := d.ensureMTU(br, spec.MTU); err != nil {
		return err
	}
	stale4, stale6 := splitFamilies(spec.StaleGateways)
	if spec.Gateway.IsValid() || len(stale4) > 0 {
		if err := d.ensureGatewayAddr(br, spec.Gateway, stale4); err != nil {
			return err
		}
	}
	if spec.Gateway6.IsValid() {
		if err := d.ensureIPv6(br, spec.Gateway6, stale6); err != nil {
			return err
		}
	} else if spec.Isolated6 {
		if err := d.ensureNoBridgeIPv6(spec.Name); err != nil {
			return err
		}
	} else if len(stale6) > 0 && d.ipv6Conf >= 0 {
		if err := d.ensureGatewayAddr6(br, netip.Prefix{}, stale6); err != nil {
			return err
		}
	}
	if err := d.ensureRouteLocalnet(spec.Name); err != nil { // published ports on 127.0.0.1
		return err
	}
	// On bridges berth makes only, as moby sets it on the bridges it
	// creates: a bridge of the administrator's that berth adopts may
	// take its own address from router advertisements.
	if created {
		if err := d.ensureNoRouterAdvertisements(spec.Name); err != nil {
			return err
		}
	}
	if err := d.ensureUp(br); err != nil {
		return err
	}
	// The subnets' routes through the bridge: the kernel makes them with
	// the addresses, and puts them back when the bridge comes up again,
	// but one deleted by hand (`ip route del 172.17.0.0/16`) cut the
	// containers off from the host and from NATed replies for good.
	for _, gw := range []netip.Prefix{spec.Gateway, spec.Gateway6} {
		if gw.IsValid() {
			if err := d.ensureSubnetRoute(br, gw); err != nil {
				return err
			}
		}
	}
	d.bridges.set(spec.Name, br.Attrs().Index, pinnedMAC(br, owner))
	return nil
}

// splitFamilies sorts prefixes into IPv4 and IPv6 ones.
func splitFamilies(ps []netip.Prefix) (v4, v6 []netip.Prefix) {
	for _, p := range ps {
		if p.Addr().Is4() {
			v4 = append(v4, p)
		} else if p.IsValid() {
			v6 = append(v6, p)
		}
	}
	return v4, v6
}

// ensureSubnetRoute puts back the route to gw's subnet through br in the
// main table, as the kernel makes it for the address (proto kernel, scope
// link, gw's address as the source), unless a route to the subnet through
// br is in any table: an administrator who moved it elsewhere (a
// policy-routing table) keeps that, and so does a bridge in a VRF (a
// master of its own), whose routes the kernel keeps in the VRF's table.
func (d *Driver) ensureSubnetRoute(br netlink.Link, gw netip.Prefix) error {
	if br.Attrs().MasterIndex != 0 {
		return nil
	}
	family := netlink.FAMILY_V4
	if gw.Addr().Is6() {
		family = netlink.FAMILY_V6
	}
	filter := &netlink.Route{LinkIndex: br.Attrs().Index, Table: unix.RT_TABLE_UNSPEC}
	routes, err := RetryDump(func() ([]netlink.Route, error) {
		return d.h.RouteListFiltered(family, filter, netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return fmt.Errorf("list routes of bridge %q: %w", br.Attrs().Name, err)
	}
	subnet := gw.Masked()
	for _, r := range routes {
		if r.Dst != nil && prefixOf(r.Dst) == subnet {
			return nil
		}
	}
	route := &netlink.Route{LinkIndex: br.Attrs().Index, Dst: ipNet(subnet), Table: unix.RT_TABLE_MAIN,
		Scope: netlink.SCOPE_LINK, Protocol: unix.RTPROT_KERNEL}
	if family == netlink.FAMILY_V4 {
		route.Src = gw.Addr().AsSlice()
	} else {
		route.Priority = 256 // the kernel's metric for a prefix route
	}
	if err := d.h.RouteAdd(route); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("put back the route to %s through bridge %q: %w", subnet, br.Attrs().Name, err)
	}
	d.log.Info("put back a bridge's subnet route", "bridge", br.Attrs().Name, "subnet", subnet.String())
	return nil
}

// ensureBridgeLink returns the bridge called spec.Name, creating it if
// missing. A link of that name that is not a bridge is an error: berth
// must never enslave ports to, or address, someone else's device.
func (d *Driver) ensureBridgeLink(spec driverapi.BridgeSpec, owner string) (l netlink.Link, created bool, err error) {
	l, err = linkIfExists(d.h, spec.Name)
	if err != nil {
		return nil, false, err
	}
	if l == nil {
		created = true
		attrs := netlink.NewLinkAttrs()
		attrs.Name = spec.Name
		attrs.MTU = spec.MTU
		// A MAC of its own pins the bridge's address: otherwise the kernel
		// gives it the lowest MAC among its ports, so it changes as
		// containers come and go (and is 00:00:00:00:00:00 with none),
		// which churns every neighbour's ARP cache. As with Docker's
		// bridge, a set MAC also leaves it NO-CARRIER until a port is up.
		// It is derived from the owner (the network's ID), so a bridge
		// made again has it too.
		attrs.HardwareAddr = bridgeMAC(owner)
		err := d.h.LinkAdd(&netlink.Bridge{LinkAttrs: attrs})
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, false, fmt.Errorf("create bridge %q: %w", spec.Name, err)
		}
		// Read it back: a concurrent creator may have won, and the
		// kernel fills in what the checks below compare.
		if l, err = d.h.LinkByName(spec.Name); err != nil {
			return nil, false, fmt.Errorf("look up bridge %q: %w", spec.Name, err)
		}
		d.log.Info("created bridge", "bridge", spec.Name)
	}
	if _, ok := l.(*netlink.Bridge); !ok {
		return nil, false, errdefs.Conflict("link %q exists and is a %s, not a bridge; choose another bridge name", spec.Name, l.Type())
	}
	return l, created, nil
}

// ensureOwned tags the bridge with owner's alias. An untagged bridge is
// adopted (a crash may have come between creating and tagging it, or the
// user pointed berth at a bridge of theirs); one tagged for someone else
// is not ours to take.
func (d *Driver) ensureOwned(br netlink.Link, owner string) error {
	want := ownerAlias(owner)
	switch cur := br.Attrs().Alias; {
	case cur == want:
		return nil
	case cur != "":
		return errdefs.Conflict("bridge %q is already in use (alias %q); choose another bridge name", br.Attrs().Name, cur)
	}
	if err := d.h.LinkSetAlias(br, want); err != nil {
		return fmt.Errorf("tag bridge %q as %q: %w", br.Attrs().Name, want, err)
	}
	return nil
}

// OwnedBy says whether the link name exists with owner's tag (the alias
// EnsureBridge gives a bridge it makes or takes over for owner).
func (d *Driver) OwnedBy(name, owner string) (bool, error) {
	l, err := linkIfExists(d.h, name)
	return l != nil && l.Attrs().Alias == ownerAlias(owner), err
}

// ReleaseBridgeOf is ReleaseBridge for a bridge owner holds, and only
// then: berth-cni hands a bridge on when the network that made it has no
// attachment left, and must not untag one someone else has since taken.
// The device and its addresses stay.
func (d *Driver) ReleaseBridgeOf(name, owner string) error {
	l, err := linkIfExists(d.h, name)
	if err != nil || l == nil || l.Attrs().Alias != ownerAlias(owner) {
		return err
	}
	return d.ReleaseBridge(name)
}

// ensureMTU sets the bridge's MTU. The MTU that matters is the one on each
// veth end (Join sets both); the bridge follows its ports, so this mostly
// keeps `ip link` honest before the first port joins.
func (d *Driver) ensureMTU(br netlink.Link, mtu int) error {
	if mtu == 0 || br.Attrs().MTU == mtu {
		return nil
	}
	if err := d.h.LinkSetMTU(br, mtu); err != nil {
		return fmt.Errorf("set MTU %d on bridge %q: %w", mtu, br.Attrs().Name, err)
	}
	return nil
}

// ensureGatewayAddr puts the gateway address gw on the bridge unless it
// is there (none for an IPv6-only network), and takes stale off it: the
// gateway of a subnet the network no longer has (the default bridge's
// --bip changed), with its subnet route. Other addresses are left alone:
// they are the administrator's.
func (d *Driver) ensureGatewayAddr(br netlink.Link, gw netip.Prefix, stale []netip.Prefix) error {
	addrs, err := RetryDump(func() ([]netlink.Addr, error) { return d.h.AddrList(br, netlink.FAMILY_V4) })
	if err != nil {
		return fmt.Errorf("list addresses of bridge %q: %w", br.Attrs().Name, err)
	}
	have := false
	for _, a := range addrs {
		switch p := prefixOf(a.IPNet); {
		case p == gw:
			have = true
		case slices.Contains(stale, p):
			d.ownChanges.mark(br.Attrs().Index)
			if err := d.h.AddrDel(br, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
				return fmt.Errorf("remove old gateway %s of bridge %q: %w", p, br.Attrs().Name, err)
			}
			d.log.Info("removed a bridge's old gateway", "bridge", br.Attrs().Name, "address", p.String())
		}
	}
	if have || !gw.IsValid() {
		return nil
	}
	err = d.h.AddrAdd(br, &netlink.Addr{IPNet: ipNet(gw)})
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add gateway %s to bridge %q: %w", gw, br.Attrs().Name, err)
	}
	return nil
}

func (d *Driver) ensureUp(l netlink.Link) error {
	if l.Attrs().Flags&net.FlagUp != 0 {
		return nil
	}
	if err := d.h.LinkSetUp(l); err != nil {
		return fmt.Errorf("set link %q up: %w", l.Attrs().Name, err)
	}
	return nil
}

// DeleteBridge deletes the bridge called name; a missing one is success.
// It refuses links that are not berth's bridges, so a stale record can
// never delete an administrator's device.
func (d *Driver) DeleteBridge(name string) error {
	if err := ValidateIfName(name); err != nil {
		return fmt.Errorf("bridge: %w", err)
	}
	l, err := linkIfExists(d.h, name)
	if err != nil || l == nil {
		return err
	}
	if _, ok := l.(*netlink.Bridge); !ok {
		return errdefs.Conflict("link %q is a %s, not a bridge; not deleting it", name, l.Type())
	}
	if alias := l.Attrs().Alias; alias != "" {
		if _, ok := ownerFromAlias(alias); !ok {
			return errdefs.Conflict("bridge %q is not berth's (alias %q); not deleting it", name, alias)
		}
	}
	d.bridges.forget(name)
	// Marked, so that the link watcher does not take berth's own delete
	// (and the kernel's setting it down) for damage to mend: the default
	// bridge's old device after a rename belongs to a network that is
	// still recorded. It stays tagged until it is gone, so a crash in
	// between leaves it for the next start to find.
	d.ownChanges.mark(l.Attrs().Index)
	if err := d.h.LinkDel(l); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete bridge %q: %w", name, err)
	}
	d.log.Info("deleted bridge", "bridge", name)
	return nil
}

// ReleaseBridge lets go of a bridge berth adopted and has no network
// for any more: it takes berth's tag off, and leaves the device, its
// ports and its addresses as they are (they are the administrator's).
// A bridge that is missing, or not berth's, is left alone. One that
// berth made itself after all (the MAC berth gives the bridges it
// creates: the administrator's was deleted and a heal made it again)
// and that has no ports of anyone else's is deleted, as berth's own.
func (d *Driver) ReleaseBridge(name string) error {
	l, err := linkIfExists(d.h, name)
	if err != nil || l == nil {
		return err
	}
	owner, ok := ownerFromAlias(l.Attrs().Alias)
	if !ok {
		return nil
	}
	if bytes.Equal(l.Attrs().HardwareAddr, bridgeMAC(owner)) {
		foreign, err := d.foreignPorts(l.Attrs().Index)
		if err != nil {
			return err
		}
		if foreign == 0 {
			return d.DeleteBridge(name)
		}
	}
	d.bridges.forget(name)
	if err := d.h.LinkSetAlias(l, ""); err != nil && !isNotFound(err) {
		return fmt.Errorf("untag bridge %q: %w", name, err)
	}
	d.log.Info("released a bridge berth had adopted", "bridge", name)
	return nil
}

// bridgeIndexes remembers the ifindex of each bridge EnsureBridge made or
// adopted, so that Join attaches a port without first asking the kernel
// for the whole bridge by name (a netlink round trip and a message of
// every bridge attribute to decode, 0.1-0.2 ms of every connect here).
// An index is never handed to another device before the 31-bit counter
// wraps (the kernel allocates them cyclically), so a stale entry can only
// fail with ENODEV, and Join then looks the bridge up by name.
type bridgeIndexes struct {
	mu sync.Mutex
	m  map[string]knownBridge
}

// knownBridge is what Join needs of a bridge: its ifindex, and its MAC,
// which Join gives the container as its gateway's (seedGateway).
type knownBridge struct {
	index int
	mac   net.HardwareAddr
}

func (b *bridgeIndexes) set(name string, index int, mac net.HardwareAddr) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[string]knownBridge{}
	}
	b.m[name] = knownBridge{index: index, mac: mac}
}

func (b *bridgeIndexes) get(name string) (int, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	kb, ok := b.m[name]
	return kb.index, ok
}

// mac is the MAC of the bridge called name, nil if it is not known.
func (b *bridgeIndexes) mac(name string) net.HardwareAddr {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.m[name].mac
}

func (b *bridgeIndexes) forget(name string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.m, name)
}

// pinnedMAC is the bridge's MAC if it is the one berth gave it (bridgeMAC
// of its owner), which the kernel then keeps; nil for a
// bridge berth adopted, whose MAC the kernel may change to the lowest of
// its ports' as they come and go (QA round 22: containers seeded with the
// MAC it had at adoption could not reach their gateway), and so nothing
// is seeded for it.
func pinnedMAC(br netlink.Link, owner string) net.HardwareAddr {
	if owner == "" || !bytes.Equal(br.Attrs().HardwareAddr, bridgeMAC(owner)) {
		return nil
	}
	return br.Attrs().HardwareAddr
}

// bridgeIndex returns the ifindex of the bridge called name: remembered,
// or looked up (and remembered) when fresh is set or it is not known.
func (d *Driver) bridgeIndex(name string, fresh bool) (int, error) {
	if !fresh {
		if i, ok := d.bridges.get(name); ok {
			return i, nil
		}
	}
	br, err := d.h.LinkByName(name)
	if err != nil {
		d.bridges.forget(name)
		if isNotFound(err) {
			return 0, errdefs.WithKind(errdefs.KindNotFound, &driverapi.NoBridgeError{Name: name})
		}
		return 0, fmt.Errorf("look up bridge %q: %w", name, err)
	}
	if _, ok := br.(*netlink.Bridge); !ok {
		d.bridges.forget(name)
		return 0, errdefs.Conflict("link %q is a %s, not a bridge", name, br.Type())
	}
	owner, _ := ownerFromAlias(br.Attrs().Alias)
	d.bridges.set(name, br.Attrs().Index, pinnedMAC(br, owner))
	return br.Attrs().Index, nil
}
