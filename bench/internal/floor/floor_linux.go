// Package floor is the bare-kernel reference of berth's benchmarks: the
// least a program must do to make the kernel objects of one berth attach
// (a netns bound to a file, a veth with its peer created in the netns, a
// bridge port, an address, a default route, links up, one nftables
// element) and nothing else — no store, no IPAM, no API, no checks.
// Every berth figure is printed as a ratio to it.
//
// It works in the namespace it is created in (the bench's private host)
// and owns one bridge and one nftables table there; it must never run in
// the machine's root namespace.
package floor

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/sandbox"
)

// Config says which bridge the floor builds.
type Config struct {
	Bridge  string       // device name, e.g. "floor0"
	Gateway netip.Prefix // the bridge's address and the subnet, e.g. 10.250.0.1/16
	Table   string       // the nftables table (family inet) the floor owns
	MTU     int
	// HostNS is the path of the namespace the bridge lives in ("" = the
	// caller's), so that tests work in a namespace of their own.
	HostNS string
	// Existing marks a bridge the floor did not make (berth's, to which it
	// adds bare ports): Close leaves it.
	Existing bool
	// NoIPv6 makes the ends as berth's driver does: IPv6 disabled on the
	// host end (net.ipv6.conf.<veth>.disable_ipv6=1, so it adds no routes
	// that every later link event in the namespace walks), address
	// generation off on the peer, and one TX and one RX queue on both
	// (no RCU wait under RTNL to shrink them: see the bridge driver's
	// createVeth). The variant that shows how much of the
	// naive floor's growth IPv6 is, and the one that stands in for berth's
	// endpoints on berth's bridge.
	NoIPv6 bool
	// GRO turns GRO on for each container-side end (see SetGRO).
	GRO bool
}

// Floor is one bridge with its table, in the caller's network namespace.
type Floor struct {
	cfg    Config
	h      *netlink.Handle
	bridge netlink.Link
	nft    *nftables.Conn
	table  *nftables.Table
	ports  *nftables.Set
	// OnStep, if set, is called before each named step of Attach: the
	// investigation benchmark times the steps with it.
	OnStep func(step string)
}

func (f *Floor) step(name string) {
	if f.OnStep != nil {
		f.OnStep(name)
	}
}

// Endpoint is one attach: the veth names, the container's address and MAC.
type Endpoint struct {
	HostIf, IfName string
	Address        netip.Prefix
	MAC            net.HardwareAddr
}

// New makes the bridge (up, with the gateway address) and the table: a set
// of ports (one element per attach), forwarding for them and masquerade of
// the subnet, the same work per packet as berth's per-network rules.
func New(cfg Config) (*Floor, error) {
	if cfg.MTU == 0 {
		cfg.MTU = 1500
	}
	host := netns.None()
	if cfg.HostNS != "" {
		var err error
		if host, err = netns.GetFromPath(cfg.HostNS); err != nil {
			return nil, err
		}
		defer host.Close()
	}
	h, err := netlink.NewHandleAt(host, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open netlink: %w", err)
	}
	f := &Floor{cfg: cfg, h: h}
	if err := f.ensureBridge(); err != nil {
		h.Close()
		return nil, err
	}
	if err := f.ensureTable(host); err != nil {
		h.Close()
		return nil, err
	}
	return f, nil
}

// Gateway is the bridge's address.
func (f *Floor) Gateway() netip.Addr { return f.cfg.Gateway.Addr() }

// Close deletes the table and the bridge (the ports go with their namespaces).
func (f *Floor) Close() error {
	f.nft.DelTable(f.table)
	errs := []error{f.nft.Flush()}
	errs = append(errs, f.nft.CloseLasting())
	if f.cfg.Existing {
		f.h.Close()
		return errors.Join(errs...)
	}
	if err := f.h.LinkDel(f.bridge); err != nil && !errors.Is(err, unix.ENODEV) {
		errs = append(errs, fmt.Errorf("delete bridge %q: %w", f.cfg.Bridge, err))
	}
	f.h.Close()
	return errors.Join(errs...)
}

func (f *Floor) ensureBridge() error {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = f.cfg.Bridge
	attrs.MTU = f.cfg.MTU
	br := &netlink.Bridge{LinkAttrs: attrs}
	if err := f.h.LinkAdd(br); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("create bridge %q: %w", f.cfg.Bridge, err)
	}
	l, err := f.h.LinkByName(f.cfg.Bridge)
	if err != nil {
		return fmt.Errorf("look up bridge %q: %w", f.cfg.Bridge, err)
	}
	addr := &netlink.Addr{IPNet: ipNet(f.cfg.Gateway)}
	if err := f.h.AddrAdd(l, addr); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("address bridge %q: %w", f.cfg.Bridge, err)
	}
	if err := f.h.LinkSetUp(l); err != nil {
		return fmt.Errorf("set bridge %q up: %w", f.cfg.Bridge, err)
	}
	f.bridge = l
	return nil
}

// NewNetns creates a namespace bound at path (lo up), as a sandbox is.
func NewNetns(path string) error { return sandbox.NewBound(path) }

// DropNetns unbinds a namespace; the kernel frees it and its veth ends
// once nothing holds it, without the caller waiting.
func DropNetns(path string) error { return sandbox.Unbind(path) }

// Attach makes ep in the namespace at nsPath: the veth with its peer
// created in the namespace, the host end a port of the bridge, the peer up
// with its address and a default route, one element in the ports set.
func (f *Floor) Attach(nsPath string, ep Endpoint) error {
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return err
	}
	defer ns.Close()
	nh, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer nh.Close()
	f.step("create veth")
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.MTU, attrs.Flags = ep.HostIf, f.cfg.MTU, net.FlagUp
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: ep.IfName, PeerHardwareAddr: ep.MAC, PeerNamespace: netlink.NsFd(ns)}
	if f.cfg.NoIPv6 {
		veth.NumTxQueues, veth.NumRxQueues = 1, 1 // the peer takes the host end's
	}
	if err := f.h.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth %q: %w", ep.HostIf, err)
	}
	if f.cfg.NoIPv6 {
		f.step("host ipv6 off")
		if err := f.disableIPv6(ep.HostIf); err != nil {
			return err
		}
	}
	f.step("attach to bridge")
	if err := f.h.LinkSetMasterByIndex(veth, f.bridge.Attrs().Index); err != nil {
		return fmt.Errorf("attach %q: %w", ep.HostIf, err)
	}
	if err := f.configurePeer(nh, ep); err != nil {
		return err
	}
	if f.cfg.GRO {
		f.step("gro on")
		if err := SetGRO(nsPath, ep.IfName, true); err != nil {
			return err
		}
	}
	f.step("nftables element")
	f.nft.SetAddElements(f.ports, []nftables.SetElement{{Key: ifnameKey(ep.HostIf)}})
	return f.nft.Flush()
}

func (f *Floor) configurePeer(nh *netlink.Handle, ep Endpoint) error {
	f.step("configure peer")
	peer, err := nh.LinkByName(ep.IfName)
	if err != nil {
		return err
	}
	if f.cfg.NoIPv6 {
		if err := nh.LinkSetIP6AddrGenMode(peer, nl.IN6_ADDR_GEN_MODE_NONE); err != nil {
			return err
		}
	}
	if err := nh.LinkSetUp(peer); err != nil {
		return err
	}
	if err := nh.AddrAdd(peer, &netlink.Addr{IPNet: ipNet(ep.Address)}); err != nil {
		return fmt.Errorf("address %q: %w", ep.IfName, err)
	}
	gw := f.cfg.Gateway.Addr().AsSlice()
	if err := nh.RouteAdd(&netlink.Route{LinkIndex: peer.Attrs().Index, Gw: gw}); err != nil {
		return fmt.Errorf("default route on %q: %w", ep.IfName, err)
	}
	return nil
}

// Detach undoes Attach the plain way, for a namespace that stays (a
// running container): it deletes the host end and waits for the kernel,
// and removes the set element.
func (f *Floor) Detach(ep Endpoint) error {
	l, err := f.h.LinkByName(ep.HostIf)
	if err != nil {
		return err
	}
	if err := f.h.LinkDel(l); err != nil {
		return fmt.Errorf("delete veth %q: %w", ep.HostIf, err)
	}
	f.nft.SetDeleteElements(f.ports, []nftables.SetElement{{Key: ifnameKey(ep.HostIf)}})
	return f.nft.Flush()
}

// disableIPv6 sets disable_ipv6 on the host end, through the /proc/sys of
// the floor's host namespace.
func (f *Floor) disableIPv6(ifName string) error {
	write := func() error {
		return os.WriteFile("/proc/sys/net/ipv6/conf/"+ifName+"/disable_ipv6", []byte("1"), 0o644)
	}
	if f.cfg.HostNS == "" {
		return write()
	}
	return sandbox.Do(f.cfg.HostNS, write)
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// ifnameKey is an interface name as nftables stores it: IFNAMSIZ bytes,
// zero padded.
func ifnameKey(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

// SetIPForward turns on forwarding in the caller's namespace (the bench's
// private host; berth's daemon does the same there).
func SetIPForward() error {
	return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644)
}
