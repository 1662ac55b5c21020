package testworld

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/sandbox"
)

const (
	hostIfName    = "eth0"   // the host's uplink, as on a real machine
	outsideIfName = "world0" // its peer in the outside world
)

// buildNetwork makes the outside namespace and wires it to the host:
//
//	host eth0 198.51.100.2/24, default via 198.51.100.1
//	          2001:db8:100::2/64, default via 2001:db8:100::1
//	  │ veth
//	outside world0 198.51.100.1/24, 2001:db8:100::1/64
//	        lo 203.0.113.10/32, 2001:db8:113::10/128
//
// Every change goes through netlink handles bound to those namespaces; the
// test process's own namespace is never touched.
func (w *World) buildNetwork() error {
	if err := sandbox.NewBound(w.OutsideNS); err != nil {
		return fmt.Errorf("create outside netns %q: %w", w.OutsideNS, err)
	}
	host, err := openHandle(w.HostNS())
	if err != nil {
		return err
	}
	defer host.Close()
	out, err := openHandle(w.OutsideNS)
	if err != nil {
		return err
	}
	defer out.Close()
	if err := addUplink(host, w.OutsideNS); err != nil {
		return err
	}
	return errors.Join(configureHostSide(host), configureOutsideSide(out))
}

// addUplink creates the veth in the host with its peer already in the outside.
func addUplink(host *netlink.Handle, outsidePath string) error {
	ns, err := netns.GetFromPath(outsidePath)
	if err != nil {
		return fmt.Errorf("open outside netns %q: %w", outsidePath, err)
	}
	defer ns.Close()
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: hostIfName},
		PeerName:      outsideIfName,
		PeerNamespace: netlink.NsFd(ns),
	}
	if err := host.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth %q/%q: %w", hostIfName, outsideIfName, err)
	}
	return nil
}

func configureHostSide(h *netlink.Handle) error {
	link, err := upWithAddr(h, hostIfName, netip.PrefixFrom(HostAddr, 24), netip.PrefixFrom(HostAddr6, 64))
	if err != nil {
		return err
	}
	for _, gw := range []netip.Addr{GatewayAddr, GatewayAddr6} {
		route := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: net.IP(gw.AsSlice())}
		if err := h.RouteAdd(route); err != nil {
			return fmt.Errorf("add default route via %s: %w", gw, err)
		}
	}
	return nil
}

func configureOutsideSide(h *netlink.Handle) error {
	if _, err := upWithAddr(h, outsideIfName, netip.PrefixFrom(GatewayAddr, 24), netip.PrefixFrom(GatewayAddr6, 64)); err != nil {
		return err
	}
	_, err := upWithAddr(h, "lo", netip.PrefixFrom(ServerAddr, 32), netip.PrefixFrom(ServerAddr6, 128))
	return err
}

// upWithAddr adds addrs to the link called name and brings it up. IPv6
// addresses skip duplicate address detection (nodad), so they work at
// once.
func upWithAddr(h *netlink.Handle, name string, addrs ...netip.Prefix) (netlink.Link, error) {
	link, err := h.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("find link %q: %w", name, err)
	}
	for _, addr := range addrs {
		a := &netlink.Addr{IPNet: &net.IPNet{
			IP:   net.IP(addr.Addr().AsSlice()),
			Mask: net.CIDRMask(addr.Bits(), addr.Addr().BitLen()),
		}}
		if addr.Addr().Is6() {
			a.Flags = unix.IFA_F_NODAD
		}
		if err := h.AddrAdd(link, a); err != nil {
			return nil, fmt.Errorf("add %s to %q: %w", addr, name, err)
		}
	}
	if err := h.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("set %q up: %w", name, err)
	}
	return link, nil
}

// setLinkUp brings up the link name in the namespace at nsPath.
func setLinkUp(nsPath, name string) error {
	h, err := openHandle(nsPath)
	if err != nil {
		return err
	}
	defer h.Close()
	link, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find link %q in %q: %w", name, nsPath, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %q up in %q: %w", name, nsPath, err)
	}
	return nil
}

// openHandle returns a netlink handle working inside the namespace at path.
func openHandle(path string) (*netlink.Handle, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("open netns %q: %w", path, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink handle in %q: %w", path, err)
	}
	return h, nil
}

func unbindOutside(path string) error {
	if err := sandbox.Unbind(path); err != nil {
		return fmt.Errorf("remove outside netns: %w", err)
	}
	return nil
}
