package bridge

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/driverapi"
	"github.com/berth-net/berth/internal/errdefs"
)

// Driver implements driverapi.Driver with netlink handles bound to the host
// namespace and, per call, to a sandbox's namespace.
type Driver struct {
	h      *netlink.Handle
	port   *portSocket // creates and sets up host ends in one request each
	reaper *reaper
	// conns holds each sandbox's namespace and sockets, Join to ReleaseSandbox.
	conns conns
	// bridges remembers the ifindex of each bridge, for Join.
	bridges bridgeIndexes
	// hostThread writes the host namespace's sysctls; nil when that is the daemon's own.
	hostThread *hostThread
	// ipv6Conf is the host's /proc/sys/net/ipv6/conf, held open; -1 if
	// the kernel has no IPv6 (see disableHostIPv6).
	ipv6Conf int
	// background counts announcements still being sent.
	background sync.WaitGroup
	log        *slog.Logger
	// failAt lets tests make a named step fail, to prove the rollback.
	failAt func(step string) error
	// hostNetns is the host namespace's path ("" = the daemon's own), for
	// sockets opened after New (WatchLinks).
	hostNetns string
	// groups mark the host veths this driver made (Groups).
	groups Groups
	// ownChanges are bridges (by ifindex) the driver itself is deleting
	// or taking an old gateway off, until when: the link watcher does not
	// take that for damage.
	ownChanges ownChanges
}

// ownChanges remembers the bridges berth itself deletes or takes an
// address off.
type ownChanges struct {
	mu sync.Mutex
	m  map[int]time.Time
}

// ownChangeFor is how long a change of berth's is told from damage: its
// notification comes within milliseconds; an administrator's change in
// that window goes unseen until the next notification or start.
const ownChangeFor = 2 * time.Second

func (o *ownChanges) mark(index int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = map[int]time.Time{}
	}
	o.m[index] = time.Now().Add(ownChangeFor)
}

// ours reports whether a change to link index is berth's own.
func (o *ownChanges) ours(index int) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	until, ok := o.m[index]
	if ok && time.Now().After(until) {
		delete(o.m, index)
		return false
	}
	return ok
}

var _ driverapi.Driver = (*Driver)(nil)

// New returns a driver whose "host" is the network namespace at hostNetns
// ("" = the daemon's own), with the daemon's groups.
func New(hostNetns string, log *slog.Logger) (*Driver, error) {
	return NewWithGroups(hostNetns, DaemonGroups, log)
}

// NewWithGroups is New with the interface groups of another kind of
// process (CNIGroups for berth-cni).
func NewWithGroups(hostNetns string, groups Groups, log *slog.Logger) (*Driver, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h, err := openHandle(hostNetns)
	if err != nil {
		return nil, fmt.Errorf("open netlink in host namespace %q: %w", hostNetns, err)
	}
	p, err := openPortSocket(hostNetns, groups.Pending)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("open netlink in host namespace %q: %w", hostNetns, err)
	}
	r, err := newReaper(hostNetns, groups, log)
	if err != nil {
		p.close()
		h.Close()
		return nil, fmt.Errorf("start veth reaper in host namespace %q: %w", hostNetns, err)
	}
	ht, err := startHostThread(hostNetns)
	if err != nil {
		r.close()
		p.close()
		h.Close()
		return nil, err
	}
	d := &Driver{h: h, port: p, reaper: r, hostThread: ht, log: log, hostNetns: hostNetns, groups: groups}
	if d.ipv6Conf, err = d.openIPv6Conf(); err != nil {
		ht.close()
		r.close()
		p.close()
		h.Close()
		return nil, err
	}
	return d, nil
}

// openHandle returns a route-netlink handle in the namespace at path ("" =
// the caller's). Only NETLINK_ROUTE is opened: xfrm and netfilter sockets
// would cost a socket each and berth never uses them here.
func openHandle(path string) (*netlink.Handle, error) {
	if path == "" {
		return netlink.NewHandle(unix.NETLINK_ROUTE)
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	return netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
}

// Close deletes the veths Leave left to the reaper and releases the
// driver's netlink sockets.
func (d *Driver) Close() error {
	d.background.Wait()
	d.releaseAll()
	d.reaper.close()
	d.hostThread.close()
	if d.ipv6Conf >= 0 {
		unix.Close(d.ipv6Conf)
	}
	d.port.close()
	d.h.Close()
	return nil
}

// step runs the test hook for a named step; it is nil in production.
func (d *Driver) step(name string) error {
	if d.failAt == nil {
		return nil
	}
	return d.failAt(name)
}

// dumpAttempts bounds retries of a netlink dump that the kernel interrupted
// because the table changed under it.
const dumpAttempts = 5

// RetryDump runs a netlink dump until it is not interrupted: an interrupted
// dump returns partial results that must not be trusted.
func RetryDump[T any](dump func() (T, error)) (T, error) {
	var (
		v   T
		err error
	)
	for range dumpAttempts {
		v, err = dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return v, fmt.Errorf("netlink dump interrupted %d times: %w", dumpAttempts, err)
}

// isNotFound reports whether err says a link does not exist.
func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV)
}

// linkIfExists returns the host link called name, or nil if there is none.
func linkIfExists(h *netlink.Handle, name string) (netlink.Link, error) {
	l, err := h.LinkByName(name)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up link %q: %w", name, err)
	}
	return l, nil
}

// LinkExists reports whether a link of that name exists in the host namespace.
func (d *Driver) LinkExists(name string) (bool, error) {
	l, err := linkIfExists(d.h, name)
	return l != nil, err
}

// BridgeAddresses returns the addresses on the bridge device name, each
// family's in the kernel's order, for dockerd's --bridge: the default
// bridge is then the administrator's device, and its address serves as
// the --bip it may not be given. A missing device is a NotFound error, a
// link that is not a bridge a Conflict.
func (d *Driver) BridgeAddresses(name string) (v4, v6 []netip.Prefix, err error) {
	l, err := linkIfExists(d.h, name)
	switch {
	case err != nil:
		return nil, nil, err
	case l == nil:
		return nil, nil, errdefs.NotFound("bridge device %s does not exist", name)
	case l.Type() != "bridge":
		return nil, nil, errdefs.Conflict("link %q exists and is a %s, not a bridge", name, l.Type())
	}
	addrs, err := RetryDump(func() ([]netlink.Addr, error) { return d.h.AddrList(l, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, nil, fmt.Errorf("list addresses of bridge %q: %w", name, err)
	}
	for _, a := range addrs {
		switch p := prefixOf(a.IPNet); {
		case !p.IsValid():
		case p.Addr().Is4():
			v4 = append(v4, p)
		default:
			v6 = append(v6, p)
		}
	}
	return v4, v6, nil
}

// Adopt reports whether spec's host end exists and, if it does, makes it
// a port of its bridge again if it is not one, and up if it is down
// (reattach), and disables
// IPv6 on it: a daemon that died in Join between making the pair and that
// write, or a berth that wrote it in the background after Join (before
// this version), may have left it on. Nothing else needs applying again:
// Join configures the container end whole, IPv6 included, before it
// returns, and the announcement it sends after is only a hint.
func (d *Driver) Adopt(sandboxPath string, spec driverapi.EndpointSpec) (bool, error) {
	l, err := linkIfExists(d.h, spec.HostIfName)
	if err != nil || l == nil {
		return false, err
	}
	if !d.isHostEnd(sandboxPath, l, spec) {
		return false, errdefs.Conflict("host interface %q is a link that is not this endpoint's veth (alias %q); not taking it over: remove it, or disconnect and connect the container", spec.HostIfName, l.Attrs().Alias)
	}
	if err := d.reattach(l, spec); err != nil {
		return true, err
	}
	if err := d.disableHostIPv6(spec.HostIfName); err != nil && !errors.Is(err, os.ErrNotExist) {
		return true, fmt.Errorf("disable IPv6 on %q: %w", spec.HostIfName, err)
	}
	return true, nil
}

// reattach makes host a port of its bridge again, as Join set it up
// (hairpin, owner alias, up), when it is not one: the bridge was deleted
// while no daemon ran, and made again at the daemon's start, which left
// the container's veth outside it with its network silently gone.
func (d *Driver) reattach(host netlink.Link, spec driverapi.EndpointSpec) error {
	index, err := d.bridgeIndex(spec.Bridge, false) // EnsureBridge ran first at the start
	if err != nil {
		return err
	}
	if host.Attrs().MasterIndex == index && host.Attrs().Alias != ownerAlias(spec.Owner) && spec.Owner != "" {
		// Its peer is the endpoint's container end, but someone changed
		// its alias: tagged again, or the link watcher would not see it.
		d.log.Warn("endpoint's veth lost its owner's alias; tagging it again", "veth", spec.HostIfName, "alias", host.Attrs().Alias)
		if err := d.port.setUpPort(host.Attrs().Index, ownerAlias(spec.Owner)); err != nil {
			return fmt.Errorf("set up %q (alias %q, hairpin): %w", spec.HostIfName, ownerAlias(spec.Owner), err)
		}
		return d.ensureUp(host)
	}
	if host.Attrs().MasterIndex == index {
		if host.Attrs().Flags&net.FlagUp != 0 {
			return nil
		}
		// Set down by hand (the watcher saw it, or a start finds it).
		d.log.Warn("endpoint's veth is down; setting it up", "veth", spec.HostIfName, "bridge", spec.Bridge)
		return d.ensureUp(host)
	}
	d.log.Warn("endpoint's veth is not on its bridge; attaching it again", "veth", spec.HostIfName, "bridge", spec.Bridge)
	if err := d.attach(host, spec.Bridge, index); err != nil {
		return fmt.Errorf("attach %q to bridge %q: %w", spec.HostIfName, spec.Bridge, err)
	}
	if err := d.port.setUpPort(host.Attrs().Index, ownerAlias(spec.Owner)); err != nil {
		return fmt.Errorf("set up %q (alias %q, hairpin): %w", spec.HostIfName, ownerAlias(spec.Owner), err)
	}
	return d.ensureUp(host)
}

// OwnedLinks lists the host-namespace links whose ifalias says berth made
// them, except veths already cut off and waiting for the reaper: they are
// being deleted and belong to no endpoint any more.
func (d *Driver) OwnedLinks() ([]driverapi.OwnedLink, error) {
	links, err := RetryDump(d.h.LinkList)
	if err != nil {
		return nil, fmt.Errorf("list host links: %w", err)
	}
	foreign := foreignPortsOf(links)
	var owned []driverapi.OwnedLink
	for _, l := range links {
		if l.Attrs().Group == d.groups.Reap {
			continue
		}
		if owner, ok := ownerFromAlias(l.Attrs().Alias); ok {
			owned = append(owned, driverapi.OwnedLink{Name: l.Attrs().Name, Owner: owner, ForeignPorts: foreign[l.Attrs().Index]})
		}
	}
	slices.SortFunc(owned, func(a, b driverapi.OwnedLink) int { return strings.Compare(a.Name, b.Name) })
	return owned, nil
}

// OwnedBridges lists the bridges berth tagged (ForeignPorts -1: not
// counted), from a dump the kernel filters by kind (IFLA_INFO_KIND in the
// request, which recent kernels honour; one that does not sends every
// link, which are filtered here): with a thousand containers, the full listing read
// two thousand links for the few bridges among them.
func (d *Driver) OwnedBridges() ([]driverapi.OwnedLink, error) {
	links, err := RetryDump(func() ([]netlink.Link, error) { return d.port.dumpKind("bridge") })
	if err != nil {
		return nil, fmt.Errorf("list host bridges: %w", err)
	}
	var owned []driverapi.OwnedLink
	for _, l := range links {
		if _, ok := l.(*netlink.Bridge); !ok || l.Attrs().Group == d.groups.Reap {
			continue
		}
		if owner, ok := ownerFromAlias(l.Attrs().Alias); ok {
			owned = append(owned, driverapi.OwnedLink{Name: l.Attrs().Name, Owner: owner, ForeignPorts: -1})
		}
	}
	slices.SortFunc(owned, func(a, b driverapi.OwnedLink) int { return strings.Compare(a.Name, b.Name) })
	return owned, nil
}

// ForeignPorts counts the ports that are not berth's of every bridge, by
// the bridge's name (one listing of every link: OwnedBridges' callers ask
// only when a bridge needs it).
func (d *Driver) ForeignPorts() (map[string]int, error) {
	links, err := RetryDump(d.h.LinkList)
	if err != nil {
		return nil, fmt.Errorf("list host links: %w", err)
	}
	byIndex := foreignPortsOf(links)
	out := map[string]int{}
	for _, l := range links {
		if n := byIndex[l.Attrs().Index]; n > 0 {
			out[l.Attrs().Name] = n
		}
	}
	return out, nil
}

// foreignPortsOf counts the ports that are not berth's, by their
// master's index.
func foreignPortsOf(links []netlink.Link) map[int]int {
	foreign := map[int]int{}
	for _, l := range links {
		if m := l.Attrs().MasterIndex; m != 0 {
			if _, ok := ownerFromAlias(l.Attrs().Alias); !ok && !isBerthGroup(l.Attrs().Group) {
				foreign[m]++
			}
		}
	}
	return foreign
}

// foreignPorts counts the ports of the bridge at index that are not berth's.
func (d *Driver) foreignPorts(index int) (int, error) {
	links, err := RetryDump(d.h.LinkList)
	if err != nil {
		return 0, fmt.Errorf("list host links: %w", err)
	}
	return foreignPortsOf(links)[index], nil
}

// HostRoutes lists the destinations of every IPv4 route in every table of
// the host namespace, default routes excluded, sorted and without duplicates.
// Pool selection skips any subnet that overlaps one of them.
func (d *Driver) HostRoutes() ([]netip.Prefix, error) {
	all := &netlink.Route{Table: unix.RT_TABLE_UNSPEC}
	routes, err := RetryDump(func() ([]netlink.Route, error) {
		return d.h.RouteListFiltered(netlink.FAMILY_V4, all, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return nil, fmt.Errorf("list host routes: %w", err)
	}
	var out []netip.Prefix
	for _, r := range routes {
		if p, ok := routePrefix(r.Dst); ok {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, comparePrefix)
	return slices.Compact(out), nil
}
