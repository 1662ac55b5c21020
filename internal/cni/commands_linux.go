package cni

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/driver/bridge"
)

// del is DEL: undo the attachment if there is one. DEL of something that
// is not there succeeds (the specification asks it of every plugin), and
// the namespace may be gone already.
func (p *plugin) del() error {
	s, err := p.load()
	if err != nil {
		return err
	}
	if _, ok := s.Attachments[p.key()]; !ok {
		return nil
	}
	return p.teardown(s, p.key())
}

// teardown removes attachment key: its veth pair (the driver finds it
// gone or in a namespace that is gone and takes that as done), its ports
// and its network's rules when it was the last on it, its addresses; and
// saves the state. A failed Leave returns at once with the record kept
// (the runtime's next DEL tries again); past it, a failure of the table or
// the save does not stop the other, and both errors are returned.
func (p *plugin) teardown(s *State, key string) error {
	a := s.Attachments[key]
	d, fw, err := p.kernel()
	if err != nil {
		return err
	}
	var errs []error
	spec := p.endpointSpec(a)
	if nr, ok := s.Networks[a.Network]; ok {
		spec.Bridge = nr.Bridge
	}
	netnsPath := a.Netns
	if p.env.Netns != "" {
		netnsPath = p.env.Netns
	}
	if _, err := os.Stat(netnsPath); err != nil {
		netnsPath = "" // gone with its container: the kernel took the peer
	}
	if err := d.Leave(netnsPath, spec); err != nil {
		// Kept, so that the runtime's next DEL tries again instead of
		// finding nothing to do and leaving the pair.
		return fmt.Errorf("remove veth %q: %w", a.HostIfName, err)
	}
	p.marked = true
	delete(s.Attachments, key)
	s.networksInUse()
	if err := p.syncFirewall(fw, s); err != nil {
		errs = append(errs, err)
	}
	if err := p.dir.save(s); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// result is ADD's answer: the bridge, the host end and the container end
// (as the bridge plugin lists them), the addresses on the container end,
// the routes and the configuration's DNS.
func (p *plugin) result(a *Attached) (*Result, error) {
	d, _, err := p.kernel()
	if err != nil {
		return nil, err
	}
	brMAC, err := d.LinkMAC(p.n.Bridge)
	if err != nil {
		return nil, err
	}
	hostMAC, err := d.LinkMAC(a.HostIfName)
	if err != nil {
		return nil, err
	}
	r := &Result{
		Interfaces: []Interface{{Name: p.n.Bridge, MAC: brMAC.String()}, {Name: a.HostIfName, MAC: hostMAC.String()},
			{Name: a.IfName, MAC: a.MAC, Sandbox: a.Netns}},
		Routes: resultRoutes(p.n, a.IPs),
		DNS:    p.n.DNS,
	}
	if !r.DNS.set() && p.n.ResolvConf != "" {
		if r.DNS, err = readResolvConf(p.n.ResolvConf); err != nil {
			return nil, err
		}
	}
	for _, ip := range a.IPs {
		r.IPs = append(r.IPs, IPConfig{Address: ip.Address, Gateway: ip.Gateway, Interface: 2})
	}
	return r, nil
}

// addRoutes adds the IPAM routes the driver did not make to the
// container, each through its own gateway or its family's: all but the
// default routes through the family's gateway (Join made those).
func addRoutes(netnsPath, ifName string, n *Network, ips []AttachedIP) error {
	var todo []Route
	for _, r := range n.Routes {
		if r.Dst.Bits() != 0 || !slices.ContainsFunc(ips, func(ip AttachedIP) bool {
			return ip.Address.Addr().Is4() == r.Dst.Addr().Is4() && (!r.GW.IsValid() || r.GW == ip.Gateway)
		}) {
			todo = append(todo, r)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	h, err := handleAt(netnsPath)
	if err != nil {
		return err
	}
	defer h.Close()
	link, err := h.LinkByName(ifName)
	if err != nil {
		return fmt.Errorf("look up %q in %s: %w", ifName, netnsPath, err)
	}
	for _, r := range todo {
		gw := routeGateway(r, ips)
		if !gw.IsValid() {
			continue // no address of the route's family
		}
		route := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: prefixNet(r.Dst), Gw: net.IP(gw.AsSlice())}
		if err := h.RouteReplace(route); err != nil {
			return fmt.Errorf("add route to %s via %s in %s: %w", r.Dst, gw, netnsPath, err)
		}
	}
	return nil
}

// routeGateway is the next hop of route r: its own, else the gateway of
// the address of its family (none if the container has no such address).
func routeGateway(r Route, ips []AttachedIP) netip.Addr {
	gw := r.GW
	for _, ip := range ips {
		if !gw.IsValid() && ip.Address.Addr().Is4() == r.Dst.Addr().Is4() {
			gw = ip.Gateway
		}
	}
	return gw
}

// checkRoutes says whether each route berth-cni made for ips (those its
// result lists) is in the container's main table through link, as the
// bridge plugin's CHECK does (ip.ValidateExpectedRoute).
func checkRoutes(h *netlink.Handle, link netlink.Link, n *Network, ips []AttachedIP) error {
	for _, r := range resultRoutes(n, ips) {
		gw := routeGateway(r, ips)
		if !gw.IsValid() {
			continue
		}
		family := netlink.FAMILY_V4
		if r.Dst.Addr().Is6() {
			family = netlink.FAMILY_V6
		}
		have, err := h.RouteList(link, family)
		if err != nil {
			return fmt.Errorf("list routes of %q: %w", link.Attrs().Name, err)
		}
		found := slices.ContainsFunc(have, func(x netlink.Route) bool {
			dst := netip.PrefixFrom(r.Dst.Addr(), 0) // a default route has no Dst
			if x.Dst != nil {
				a, _ := netip.AddrFromSlice(x.Dst.IP)
				ones, _ := x.Dst.Mask.Size()
				dst = netip.PrefixFrom(a.Unmap(), ones)
			}
			via, _ := netip.AddrFromSlice(x.Gw)
			return dst == r.Dst.Masked() && via.Unmap() == gw
		})
		if !found {
			return fmt.Errorf("route to %s via %s is missing from interface %q", r.Dst, gw, link.Attrs().Name)
		}
	}
	return nil
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func handleAt(path string) (*netlink.Handle, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", path, err)
	}
	defer ns.Close()
	return netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
}

// check is CHECK: the attachment is recorded and done, the container's
// interface is there with its MAC and addresses, the host end is a port
// of the bridge, and the prevResult the runtime holds says the same.
func (p *plugin) check() error {
	s, err := p.load()
	if err != nil {
		return err
	}
	a, ok := s.Attachments[p.key()]
	if !ok || !a.Done {
		return errorf(CodeUnknownContainer, "berth-cni has no attachment of container %s as %s on network %q", p.env.ContainerID, p.env.IfName, p.n.Name)
	}
	if err := checkPrevResult(p.conf.PrevResult, a); err != nil {
		return err
	}
	d, fw, err := p.kernel()
	if err != nil {
		return err
	}
	if err := d.CheckPort(p.n.Bridge, a.HostIfName); err != nil {
		return err
	}
	h, err := handleAt(p.env.Netns)
	if err != nil {
		return err
	}
	defer h.Close()
	link, err := h.LinkByName(a.IfName)
	if err != nil {
		return fmt.Errorf("interface %q in %s: %w", a.IfName, p.env.Netns, err)
	}
	if link.Attrs().HardwareAddr.String() != a.MAC {
		return fmt.Errorf("interface %q has MAC %s, not %s", a.IfName, link.Attrs().HardwareAddr, a.MAC)
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		return fmt.Errorf("interface %q is down", a.IfName)
	}
	addrs, err := h.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return err
	}
	for _, ip := range a.IPs {
		found := slices.ContainsFunc(addrs, func(x netlink.Addr) bool {
			have, ok := netip.AddrFromSlice(x.IP)
			ones, _ := x.Mask.Size()
			return ok && have.Unmap() == ip.Address.Addr() && ones == ip.Address.Bits()
		})
		if !found {
			return fmt.Errorf("interface %q lacks address %s", a.IfName, ip.Address)
		}
	}
	if err := checkRoutes(h, link, p.n, a.IPs); err != nil {
		return err
	}
	// The rules: a table flushed or deleted (nft flush ruleset, a
	// firewall reload) took masquerade and the published ports with it;
	// the next ADD or DEL rebuilds it.
	if ok, err := fw.TableExists(); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("berth-cni's nftables table is gone: masquerade and published ports do not work")
		}
		s.TableDirty = true
		return errors.Join(err, p.dir.save(s))
	}
	return nil
}

// checkPrevResult compares the runtime's record of the ADD with berth's.
func checkPrevResult(raw []byte, a *Attached) error {
	if len(raw) == 0 {
		return errorf(CodeInvalidConfig, "CHECK needs the prevResult of the ADD")
	}
	var prev prevResult
	if err := json.Unmarshal(raw, &prev); err != nil {
		return &Error{Code: CodeDecodeFailure, Msg: "decode prevResult", Details: err.Error()}
	}
	for _, ip := range a.IPs {
		if !slices.ContainsFunc(prev.IPs, func(x ipJSON) bool { return x.Address == ip.Address.String() }) {
			return fmt.Errorf("prevResult lacks address %s that berth-cni gave %s", ip.Address, a)
		}
	}
	return nil
}

// gc is GC: every attachment of this network that the runtime does not
// list as valid is torn down.
func (p *plugin) gc() error {
	s, err := p.load()
	if err != nil {
		return err
	}
	valid := map[string]bool{}
	for _, v := range p.conf.ValidAttachments {
		valid[Key(p.n.Name, v.ContainerID, v.IfName)] = true
	}
	var errs []error
	for _, key := range slices.Sorted(maps.Keys(s.Attachments)) {
		if a := s.Attachments[key]; a.Network == p.n.Name && !valid[key] {
			p.log.Info("collecting an attachment the runtime no longer has", "attachment", a.String())
			if err := p.teardown(s, key); err != nil {
				errs = append(errs, err)
			}
		}
	}
	// The idle bridges that are gone, or were never this plugin's.
	if len(s.Idle) > 0 {
		if d, _, err := p.kernel(); err != nil {
			errs = append(errs, err)
		} else if s.dropGoneIdle(p.ownedBy(d)) {
			if err := p.dir.save(s); err != nil {
				errs = append(errs, err)
			}
		}
	}
	// And every pair cut off that no deleting process took (one that
	// died): GC is where a runtime expects the slow work.
	if err := bridge.DeleteGroup("", bridge.CNIGroups.Reap); err != nil {
		errs = append(errs, fmt.Errorf("delete veths cut off: %w", err))
	}
	p.marked = false
	return errors.Join(errs...)
}

// status is STATUS: berth-cni can take an ADD on this network if each of
// its range sets has an address left.
func (p *plugin) status() error {
	s, err := p.load()
	if err != nil {
		return err
	}
	probe := &State{Attachments: s.Attachments, Networks: s.Networks, Last: map[string]netip.Addr{}}
	if _, err := probe.Allocate(p.n, "status", nil); err != nil {
		return &Error{Code: CodeNotAvailable, Msg: "network cannot take another container", Details: err.Error()}
	}
	return nil
}
