package bridge

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/errdefs"
)

// ensureNoRouterAdvertisements sets net.ipv6.conf.<bridge>.accept_ra=0,
// on every bridge, IPv6 or not. A container needs only CAP_NET_RAW (in
// Docker's default set) to forge a router advertisement, and a bridge
// that took one would give the host a default route through that
// container (CVE-2020-13401); Docker sets the same on its bridges
// (setupDefaultSysctl). IPv6 forwarding does not make it moot: at
// accept_ra=2, which hosts that forward set to keep SLAAC and which a new
// bridge inherits from default.accept_ra, the kernel takes them anyway.
// A kernel without IPv6, or a bridge without it (an MTU below 1280: no
// such file), has nothing to take them with.
func (d *Driver) ensureNoRouterAdvertisements(bridge string) error {
	if err := d.ensureBridgeSysctl6(bridge, "accept_ra", "0"); err != nil {
		return fmt.Errorf("stop bridge %q taking router advertisements: %w", bridge, err)
	}
	return nil
}

// ensureBridgeSysctl6 sets one of the bridge's IPv6 sysctls in the host
// namespace. Without IPv6 in the kernel, or on the bridge (its entry is
// missing), there is nothing to set.
func (d *Driver) ensureBridgeSysctl6(bridge, name, value string) error {
	if d.ipv6Conf < 0 {
		return nil
	}
	err := d.hostThread.do(func() error {
		_, err := ensureSysctlAt(d.ipv6Conf, bridge+"/"+name, value)
		return err
	})
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// ensureIPv6 gives the bridge br its IPv6 gateway address gw, IPv6 on
// it first, and turns IPv6 forwarding on.
func (d *Driver) ensureIPv6(br netlink.Link, gw netip.Prefix, stale []netip.Prefix) error {
	if err := d.ensureBridgeIPv6(br.Attrs().Name); err != nil {
		return err
	}
	if err := d.ensureGatewayAddr6(br, gw, stale); err != nil {
		return err
	}
	if err := d.enableBridgeNetfilter6(); err != nil {
		return err
	}
	return d.ensureIPv6Forwarding()
}

// ensureBridgeIPv6 makes IPv6 work on the bridge of a network with IPv6,
// before its address is added: per-device sysctls of the bridge only.
//
// accept_dad=0 first (as netavark sets it): the gateway address itself
// needs no sysctl (ensureGatewayAddr6 adds it with IFA_F_NODAD), but the
// link-local address the kernel gives the bridge when its first port
// comes up does, and while that is tentative the host cannot resolve a
// container's address for a packet it forwards into the bridge (a
// neighbour solicitation takes its source from it: ndisc_send_ns). The
// only other nodes on the link are containers, whose addresses berth
// hands out, so there is nothing to detect. Then disable_ipv6=0, for a
// host whose default turns IPv6 off: berth never turns it off on its
// bridges, only on its host veths (disableHostIPv6).
func (d *Driver) ensureBridgeIPv6(bridge string) error {
	if d.ipv6Conf < 0 {
		return errdefs.Invalid("bridge %q: the kernel has no IPv6 (booted with ipv6.disable=1); create the network without IPv6", bridge)
	}
	for _, s := range []struct{ name, value string }{{"accept_dad", "0"}, {"disable_ipv6", "0"}} {
		err := d.hostThread.do(func() error {
			_, err := ensureSysctlAt(d.ipv6Conf, bridge+"/"+s.name, s.value)
			return err
		})
		if errors.Is(err, os.ErrNotExist) {
			return errdefs.Invalid("bridge %q has no IPv6 (an MTU below 1280?); create the network without IPv6 or with a larger MTU", bridge)
		}
		if err != nil {
			return fmt.Errorf("set %s=%s on bridge %q: %w", s.name, s.value, bridge, err)
		}
	}
	return nil
}

// ensureNoBridgeIPv6 turns IPv6 off on a bridge whose network is
// isolated in IPv6: no address at all, not even a link-local one through
// which its containers could reach the host.
func (d *Driver) ensureNoBridgeIPv6(bridge string) error {
	if err := d.ensureBridgeSysctl6(bridge, "disable_ipv6", "1"); err != nil {
		return fmt.Errorf("turn IPv6 off on bridge %q: %w", bridge, err)
	}
	return nil
}

// ensureGatewayAddr6 puts the IPv6 gateway address on the bridge unless
// it is there, without duplicate address detection (IFA_F_NODAD, as
// moby's programIPv6Addresses adds it): the containers' default route
// points at it and must work at once. The address there with another
// prefix length counts, as moby counts it: the kernel keys IPv6 addresses
// by address alone (adding it again fails), and the length is only
// informational (RFC 5942). The kernel's link-local address and any other
// are left alone: moby keeps fe80::/64 ones, and the rest are the
// administrator's.
func (d *Driver) ensureGatewayAddr6(br netlink.Link, gw netip.Prefix, stale []netip.Prefix) error {
	addrs, err := RetryDump(func() ([]netlink.Addr, error) { return d.h.AddrList(br, netlink.FAMILY_V6) })
	if err != nil {
		return fmt.Errorf("list IPv6 addresses of bridge %q: %w", br.Attrs().Name, err)
	}
	have := false
	for _, a := range addrs {
		p := prefixOf(a.IPNet)
		switch {
		case gw.IsValid() && p.Addr() == gw.Addr():
			have = true
		case slices.ContainsFunc(stale, func(s netip.Prefix) bool { return s.Addr() == p.Addr() }):
			// The gateway of a subnet the network no longer has (the
			// default bridge's --fixed-cidr-v6 changed, or --ipv6 was
			// dropped). Only that one: other addresses of a bridge berth
			// adopted are the administrator's.
			d.ownChanges.mark(br.Attrs().Index)
			if err := d.h.AddrDel(br, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
				return fmt.Errorf("remove old IPv6 gateway %s of bridge %q: %w", p, br.Attrs().Name, err)
			}
		}
	}
	if have || !gw.IsValid() {
		return nil
	}
	err = d.h.AddrAdd(br, &netlink.Addr{IPNet: ipNet(gw), Flags: unix.IFA_F_NODAD})
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add gateway %s to bridge %q: %w", gw, br.Attrs().Name, err)
	}
	return nil
}

// ipv6ForwardingPath is net.ipv6.conf.all.forwarding, under ipv6ConfPath.
// Writing it sets default.forwarding and every device's too (the kernel's
// addrconf_fixup_forwarding), so moby's separate write of
// default/forwarding (with a FIXME asking whether it is needed) is not.
const ipv6ForwardingPath = "all/forwarding"

// ensureIPv6Forwarding sets net.ipv6.conf.all.forwarding=1 in the
// driver's host namespace and nowhere else, as moby's setupIPv6Forwarding
// does for a network with IPv6.
//
// It leaves the host's other interfaces alone (moby does too): a host
// that forwards ignores router advertisements on interfaces with
// accept_ra=1, so one whose IPv6 default route came from them loses it
// when it expires. That is the administrator's to fix (accept_ra=2 on
// that interface, as Docker's documentation says), so it is only logged.
func (d *Driver) ensureIPv6Forwarding() error {
	var changed bool
	err := d.hostThread.do(func() error {
		var err error
		changed, err = ensureSysctlAt(d.ipv6Conf, ipv6ForwardingPath, "1")
		return err
	})
	if err != nil {
		return fmt.Errorf("enable IPv6 forwarding: %w", err)
	}
	if changed {
		d.log.Info("enabled IPv6 forwarding", "sysctl", "net.ipv6.conf.all.forwarding")
		d.warnIfRouterAdvertisementsIgnored()
	}
	return nil
}

// warnIfRouterAdvertisementsIgnored logs every interface of the host
// namespace that has an IPv6 default route from a router advertisement
// and will take no more now that the host forwards (accept_ra is not 2).
func (d *Driver) warnIfRouterAdvertisementsIgnored() {
	filter := &netlink.Route{Protocol: unix.RTPROT_RA}
	routes, err := RetryDump(func() ([]netlink.Route, error) {
		return d.h.RouteListFiltered(netlink.FAMILY_V6, filter, netlink.RT_FILTER_PROTOCOL)
	})
	if err != nil {
		d.log.Debug("list IPv6 routes from router advertisements", "err", err)
		return
	}
	for _, r := range routes {
		if r.Dst != nil && prefixOf(r.Dst).Bits() != 0 {
			continue // not a default route
		}
		l, err := d.h.LinkByIndex(r.LinkIndex)
		if err != nil {
			continue
		}
		name := l.Attrs().Name
		var acceptRA string
		err = d.hostThread.do(func() error {
			var err error
			acceptRA, err = readSysctlAt(d.ipv6Conf, name+"/accept_ra")
			return err
		})
		if err != nil || acceptRA == "2" {
			continue
		}
		d.log.Warn("IPv6 forwarding is now on, so this interface takes no more router advertisements and will lose the IPv6 default route it has from them; set net.ipv6.conf."+name+".accept_ra=2 to keep it",
			"interface", name, "accept_ra", acceptRA)
	}
}
