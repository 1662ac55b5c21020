package network

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/firewall"
	"github.com/berth-net/berth/internal/store"
)

// Published ports belong to an endpoint, as in libnetwork's bridge driver:
// Join resolves and records them (intent first), holds the host ports, makes
// the veth pair and then adds the firewall's map elements; Leave removes the
// elements first, then the veth, then lets the host ports go.
//
// The ports a container asks for are its sandbox's, and its gateway
// endpoints publish them, each family's on the endpoint that gives the
// sandbox that family's default route (portFamilies), as libnetwork's
// sbJoin programs external connectivity on the IPv4 and the IPv6 gateway
// (ProgramExternalConnectivity with gw4 and gw6): never on an internal
// network. A container run on an internal network publishes nothing
// until it joins a network that is not.

// PortRequest is one port a user asked to publish, parsed at the API edge.
type PortRequest struct {
	Proto string `json:"proto"` // "tcp" or "udp"
	Port  uint16 `json:"port"`  // in the container
	// HostIP is the host address to publish on; invalid means the network's
	// host_binding_ipv4 (0.0.0.0 unless set): every address.
	HostIP netip.Addr `json:"hostIP,omitzero"`
	// HostPortStart..HostPortEnd is the host port or the range to pick one
	// from; 0 means an ephemeral port the kernel chooses.
	HostPortStart uint16 `json:"hostPortStart,omitempty"`
	HostPortEnd   uint16 `json:"hostPortEnd,omitempty"`
}

// PortMapping is one published port of an endpoint as recorded.
type PortMapping struct {
	Proto    string     `json:"proto"`
	HostIP   netip.Addr `json:"hostIP"`
	HostPort uint16     `json:"hostPort"`
	Port     uint16     `json:"port"`
}

func (m PortMapping) String() string {
	return fmt.Sprintf("%s:%d->%d/%s", m.HostIP, m.HostPort, m.Port, m.Proto)
}

// Routed reports whether m is a port published on a network in gateway
// mode routed for its family (HostIP 0.0.0.0 or ::): it holds no host
// port, and its HostPort is 0 (routed.go).
func (m PortMapping) Routed() bool { return m.HostPort == 0 }

// HostPortRequest asks the PortHolder for one host port of a range.
type HostPortRequest struct {
	Proto      string
	HostIP     netip.Addr // 0.0.0.0 for every address
	Start, End uint16     // 0, 0: ephemeral
	// Container is the endpoint's address and the container's port, which
	// Docker's words for a failed bind name; unset when a restart holds
	// ports again.
	Container netip.AddrPort
	// Proxied says the holder will be asked to Forward the port: its TCP
	// socket then listens from the bind on, so that a client's handshake
	// waits in the backlog for the proxy. Any other port's socket never
	// accepts (a connection nftables does not take is refused).
	Proxied bool
}

// HostPort is a host port the PortHolder holds.
type HostPort struct {
	Proto  string
	HostIP netip.Addr
	Port   uint16
}

// String is hp as logs and errors name it: "0.0.0.0:8080/tcp".
func (hp HostPort) String() string { return fmt.Sprintf("%s:%d/%s", hp.HostIP, hp.Port, hp.Proto) }

// PortHolder keeps host ports from other processes while they are published
// (internal/portalloc binds a socket on each), so that a port some host
// process already uses is refused and none can take it later.
type PortHolder interface {
	// Hold takes one port per request, all or none. A port in use is an
	// errdefs conflict.
	Hold(reqs []HostPortRequest) ([]HostPort, error)
	// Release lets the ports go; unknown ones are not an error.
	Release(ps []HostPort) error
}

// PortForwarder is a PortHolder that forwards a held port's traffic to
// a container itself: the IPv6 side of a port, which no nftables rule
// can take to an IPv4 container (internal/portproxy).
type PortForwarder interface {
	Forward(hp HostPort, target netip.AddrPort) error
}

// noPorts is the PortHolder of a controller configured without one: it
// checks nothing and hands out the first port of each range.
type noPorts struct{}

func (noPorts) Hold(reqs []HostPortRequest) ([]HostPort, error) {
	out := make([]HostPort, len(reqs))
	for i, r := range reqs {
		if r.Start == 0 {
			return nil, errdefs.Invalid("no port holder to choose an ephemeral port")
		}
		out[i] = HostPort{Proto: r.Proto, HostIP: r.HostIP, Port: r.Start}
	}
	return out, nil
}

func (noPorts) Release([]HostPort) error { return nil }

func (c *Controller) portHolder() PortHolder {
	if c.cfg.Ports == nil {
		return noPorts{}
	}
	return c.cfg.Ports
}

// validatePortRequests checks requests before anything is held.
func validatePortRequests(reqs []PortRequest) error {
	for _, r := range reqs {
		if _, err := firewall.ParseProto(r.Proto); err != nil {
			return err
		}
		if r.Port == 0 {
			return errdefs.Invalid("invalid container port 0/%s", r.Proto)
		}
		if r.HostIP.IsValid() && (r.HostIP.Zone() != "" || r.HostIP.Is4In6()) {
			return errdefs.Invalid("invalid host IP %s for port %d/%s", r.HostIP, r.Port, r.Proto)
		}
		if r.HostPortEnd < r.HostPortStart || (r.HostPortStart == 0) != (r.HostPortEnd == 0) {
			return errdefs.Invalid("invalid host port range %d-%d for port %d/%s", r.HostPortStart, r.HostPortEnd, r.Port, r.Proto)
		}
	}
	return nil
}

// publishesPorts says whether an endpoint on n can be a sandbox's gateway
// and publish its ports: not on host and null networks, where Docker
// ignores ports, nor on internal ones, which have no way out.
func publishesPorts(n *Network) bool {
	return n.Driver == DriverBridge && !n.Internal
}

// portFamilies are the families of its sandbox's ports an endpoint
// publishes (moby's portBindingMode).
type portFamilies struct{ v4, v6 bool }

func (f portFamilies) any() bool { return f.v4 || f.v6 }

// has says whether m is of a family in f.
func (f portFamilies) has(m PortMapping) bool {
	if m.HostIP.Is4() {
		return f.v4
	}
	return f.v6
}

// and is the families both f and g have.
func (f portFamilies) and(g portFamilies) portFamilies {
	return portFamilies{v4: f.v4 && g.v4, v6: f.v6 && g.v6}
}

// minus is f without g's families.
func (f portFamilies) minus(g portFamilies) portFamilies {
	return portFamilies{v4: f.v4 && !g.v4, v6: f.v6 && !g.v6}
}

// mappedFamilies are the families of ms.
func mappedFamilies(ms []PortMapping) portFamilies {
	var f portFamilies
	for _, m := range ms {
		if m.HostIP.Is4() {
			f.v4 = true
		} else {
			f.v6 = true
		}
	}
	return f
}

// holdPorts resolves ep's port requests on n, validated, for the
// families in fam: it holds the host ports and returns the mappings, for
// the caller to record with ep. near are the sandbox's mappings on its
// other endpoints: an IPv6 port asked for on every address takes, if it
// can, the host port its IPv4 side got there (holdPorts6).
//
// A port asked for on every address (no host IP, and the network's
// host_binding_ipv4 0.0.0.0) is published on [::] too, with the same
// host port, when IPv6Ports is set: Docker 28's addPortMappings does so
// with its userland proxy, and inspect, docker port and ps show both. The
// IPv4 ports are held first; their IPv6 twins then take the ports those
// got (an ephemeral or a range's), and if one cannot, none is held.
func (c *Controller) holdPorts(n *Network, ep *Endpoint, reqs []PortRequest, fam portFamilies, near []PortMapping) ([]PortMapping, error) {
	if len(reqs) == 0 || !publishesPorts(n) || !fam.any() {
		return nil, nil
	}
	routed, reqs := c.routedPorts(n, ep, reqs, fam)
	ms, err := c.holdNATPorts(n, ep, reqs, fam, near)
	if err != nil {
		return nil, err
	}
	return append(ms, routed...), nil
}

// holdNATPorts is holdPorts for the requests that are NATed.
func (c *Controller) holdNATPorts(n *Network, ep *Endpoint, reqs []PortRequest, fam portFamilies, near []PortMapping) ([]PortMapping, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	if !ep.Address.IsValid() || !fam.v4 {
		if !fam.v6 {
			return nil, nil
		}
		return c.holdPorts6(n, ep, reqs, near)
	}
	// six: the IPv6 sides are this endpoint's to publish too (the
	// sandbox has no other IPv6 gateway).
	six := fam.v6
	hreqs := make([]HostPortRequest, 0, len(reqs))
	kept := make([]PortRequest, 0, len(reqs))
	var twins []int // the requests of hreqs that get an IPv6 twin
	for _, r := range reqs {
		ip := r.HostIP
		if !ip.IsValid() {
			// The network's default host address: 0.0.0.0 (or none) gets
			// the [::] twin; an IPv6 one, [::] included, is that address
			// alone (moby's configurePortBindingIPv4 makes no IPv4 binding
			// for an IPv6 default).
			ip = n.Bridge.HostBindingIPv4
			if (!ip.IsValid() || ip == netip.IPv4Unspecified()) && six && c.cfg.IPv6Ports && c.reaches6(ep) {
				twins = append(twins, len(hreqs))
			}
		}
		if !ip.IsValid() {
			ip = netip.IPv4Unspecified()
		}
		if ip.Is6() && !six {
			continue // the IPv6 gateway's
		}
		if ip.Is6() && !c.reaches6(ep) {
			c.logNoProxy6To4(ep, r, ip)
			continue
		}
		hreqs = append(hreqs, HostPortRequest{Proto: r.Proto, HostIP: ip, Start: r.HostPortStart, End: r.HostPortEnd,
			Container: netip.AddrPortFrom(targetOf(ep, ip), r.Port), Proxied: ip.Is6() && c.proxyOn()})
		kept = append(kept, r)
	}
	reqs = kept
	if len(hreqs) == 0 {
		return nil, nil
	}
	held, err := c.holdGrouped(hreqs, reqs)
	if err != nil {
		return nil, connectivityError(ep, err)
	}
	held6 := make([]HostPort, len(twins))
	for k, i := range twins {
		target6 := netip.AddrPortFrom(targetOf(ep, netip.IPv6Unspecified()), hreqs[i].Container.Port())
		if held6[k], err = c.holdTwin(hreqs[i], &held[i], target6); err != nil {
			return nil, connectivityError(ep, errors.Join(err, c.portHolder().Release(append(held, held6[:k]...))))
		}
	}
	ms := make([]PortMapping, 0, len(reqs)+len(twins))
	for i, r := range reqs {
		ms = append(ms, PortMapping{Proto: held[i].Proto, HostIP: held[i].HostIP, HostPort: held[i].Port, Port: r.Port})
		if k := slices.Index(twins, i); k >= 0 {
			ms = append(ms, PortMapping{Proto: held6[k].Proto, HostIP: held6[k].HostIP, HostPort: held6[k].Port, Port: r.Port})
		}
	}
	return ms, nil
}

// logNoProxy6To4 says why r, on IPv6 host address ip, is not published
// for ep, an IPv4-only endpoint, as moby's sortAndNormPBs: logged and
// left out, not an error (the gateway may change to a network where it
// can be).
func (c *Controller) logNoProxy6To4(ep *Endpoint, r PortRequest, ip netip.Addr) {
	msg := "cannot map from IPv6 to an IPv4-only container because the userland proxy is disabled"
	if !r.HostIP.IsValid() {
		msg = "cannot map from default host binding address to an IPv4-only container because the userland proxy is disabled"
	}
	c.log.Info(msg, "container", ep.Name, "host_ip", ip, "port", r.Port, "proto", r.Proto)
}

// holdPorts6 is holdPorts for the IPv6 side alone: for an endpoint with
// no IPv4 address (on an IPv6-only network), and for one that publishes
// the IPv6 ports and not the IPv4 ones (another endpoint is the IPv4
// gateway, or was when this one took its IPv4 ports). As moby's
// configurePortBindingIPv6, only the requests that can be IPv6 are
// published, those on an IPv6 host address and those on every address
// ([::]); a request for an IPv4 host address is left out, and so is
// every one when the host has no IPv6 (IPv6Ports unset) or the network's
// default host address is IPv4 and not 0.0.0.0. An endpoint without
// IPv6 is reached through the userland proxy, or not at all.
//
// A [::] port whose range lets the port be chosen takes the host port of
// its IPv4 side in near (0.0.0.0, the same container port) when it is
// free, as the twins of one endpoint share theirs (holdTwin).
func (c *Controller) holdPorts6(n *Network, ep *Endpoint, reqs []PortRequest, near []PortMapping) ([]PortMapping, error) {
	ctr := ep.Address6.Addr()
	if !ep.Address6.IsValid() {
		ctr = ep.Address.Addr()
	}
	var hreqs []HostPortRequest
	var ports []uint16
	for _, r := range reqs {
		ip := r.HostIP
		if !ip.IsValid() {
			switch def := n.Bridge.HostBindingIPv4; {
			case !c.cfg.IPv6Ports:
				continue
			case !def.IsValid() || def.IsUnspecified():
				ip = netip.IPv6Unspecified()
			case def.Is6():
				ip = def
			default:
				continue
			}
		}
		if ip.Is4() {
			continue
		}
		if !c.reaches6(ep) {
			c.logNoProxy6To4(ep, r, ip)
			continue
		}
		hreqs = append(hreqs, HostPortRequest{Proto: r.Proto, HostIP: ip, Start: r.HostPortStart, End: r.HostPortEnd,
			Container: netip.AddrPortFrom(ctr, r.Port), Proxied: c.proxyOn()})
		ports = append(ports, r.Port)
	}
	if len(hreqs) == 0 {
		return nil, nil
	}
	held, err := c.holdNear(hreqs, ports, near)
	if err != nil {
		return nil, connectivityError(ep, err)
	}
	ms := make([]PortMapping, len(held))
	for i, h := range held {
		ms[i] = PortMapping{Proto: h.Proto, HostIP: h.HostIP, HostPort: h.Port, Port: ports[i]}
	}
	return ms, nil
}

// holdNear holds hreqs, IPv6 requests for container ports ports (one
// for one), each [::] one that lets the port be chosen on the host port
// of its IPv4 side in near when there is one; if any of those is taken,
// all are held as asked instead. A request's IPv4 side is a 0.0.0.0
// mapping of the same protocol and container port in the request's
// range that no other request's is: the fixed requests take theirs
// first, then the ranges, then the ephemeral ones (-p 8080:80 -p 80:
// the second's [::] side takes what its IPv4 side got, not 8080).
func (c *Controller) holdNear(hreqs []HostPortRequest, ports []uint16, near []PortMapping) ([]HostPort, error) {
	pinned := slices.Clone(hreqs)
	taken := make([]bool, len(near))
	moved := false
	for pass := range 3 {
		for i, r := range pinned {
			kind := 2 // ephemeral
			if r.Start != 0 {
				kind = 1
				if r.Start == r.End {
					kind = 0
				}
			}
			if kind != pass || r.HostIP != netip.IPv6Unspecified() {
				continue
			}
			for k, m := range near {
				if taken[k] || m.HostIP != netip.IPv4Unspecified() || m.Proto != r.Proto || m.Port != ports[i] || m.Routed() ||
					(r.Start != 0 && (m.HostPort < r.Start || r.End < m.HostPort)) {
					continue
				}
				taken[k] = true
				if kind != 0 {
					pinned[i].Start, pinned[i].End = m.HostPort, m.HostPort
					moved = true
				}
				break
			}
		}
	}
	if moved {
		held, err := c.portHolder().Hold(pinned)
		if err == nil || !errdefs.Is(err, errdefs.KindConflict) {
			return held, err
		}
	}
	return c.portHolder().Hold(hreqs)
}

// holdGrouped holds hreqs (made from reqs, one for one). Requests that
// differ only in their host address share one host port, as moby's
// needSamePort groups them (-p 127.0.0.1::80 -p 127.0.0.2::80, or the
// same range on two addresses): the first of a group is held with the
// others, the rest then on the port it got, and if one of them cannot
// have it the whole group moves to the next port the request allows.
func (c *Controller) holdGrouped(hreqs []HostPortRequest, reqs []PortRequest) ([]HostPort, error) {
	leader := make([]int, len(hreqs))
	var first []HostPortRequest
	var firstAt []int
	for i, r := range hreqs {
		leader[i] = -1
		if explicit(reqs[i].HostIP) && !(r.Start != 0 && r.Start == r.End) {
			for j := range i {
				q := hreqs[j]
				if leader[j] == -1 && explicit(reqs[j].HostIP) && q.Proto == r.Proto && reqs[j].Port == reqs[i].Port &&
					q.Start == r.Start && q.End == r.End && q.HostIP != r.HostIP {
					leader[i] = j
					break
				}
			}
		}
		if leader[i] == -1 {
			first, firstAt = append(first, r), append(firstAt, i)
		}
	}
	got, err := c.portHolder().Hold(first)
	if err != nil || len(first) == len(hreqs) {
		return got, err
	}
	held := make([]HostPort, len(hreqs))
	for k, i := range firstAt {
		held[i] = got[k]
	}
	for _, l := range firstAt {
		var fs []int
		for i, li := range leader {
			if li == l {
				fs = append(fs, i)
			}
		}
		if len(fs) == 0 {
			continue
		}
		if err := c.holdFollowers(hreqs, l, fs, held); err != nil {
			var all []HostPort
			for _, h := range held {
				if h.Port != 0 {
					all = append(all, h)
				}
			}
			return nil, errors.Join(err, c.portHolder().Release(all))
		}
	}
	return held, nil
}

// explicit reports whether a request names one host address.
func explicit(ip netip.Addr) bool { return ip.IsValid() && !ip.IsUnspecified() }

// holdFollowers holds hreqs[fs] on the port held[l] got, moving held[l]
// to the next port hreqs[l]'s search gives while one of them cannot (up
// to twinAttempts, as holdTwin).
func (c *Controller) holdFollowers(hreqs []HostPortRequest, l int, fs []int, held []HostPort) error {
	r := hreqs[l]
	for attempt := 1; ; attempt++ {
		reqs := make([]HostPortRequest, len(fs))
		for k, i := range fs {
			reqs[k] = hreqs[i]
			reqs[k].Start, reqs[k].End = held[l].Port, held[l].Port
		}
		got, err := c.portHolder().Hold(reqs)
		if err == nil {
			for k, i := range fs {
				held[i] = got[k]
			}
			return nil
		}
		if !errdefs.Is(err, errdefs.KindConflict) || attempt == twinAttempts {
			return err
		}
		// The same range again: its search starts after the port just
		// tried (held meanwhile), wrapping, as moby's retry does.
		moved, err := c.portHolder().Hold([]HostPortRequest{r})
		if err != nil {
			return err
		}
		if err := c.portHolder().Release([]HostPort{held[l]}); err != nil {
			c.log.Warn("release a host port", "port", held[l].String(), "err", err)
		}
		held[l] = moved[0]
	}
}

// twinAttempts bounds the ports holdTwin tries, moby's
// maxAllocatePortAttempts.
const twinAttempts = 10

// targetOf is the container address a port published on host address ip
// goes to, as errors name it: ep's IPv6 address for an IPv6 one when ep
// has one (DNAT), else its IPv4 address (the proxy's).
func targetOf(ep *Endpoint, ip netip.Addr) netip.Addr {
	if ip.Is6() && ep.Address6.IsValid() {
		return ep.Address6.Addr()
	}
	return ep.Address.Addr()
}

// holdTwin holds the IPv6 twin of *v4, the port held for r: [::] on the
// same port, for target6 (the container side its errors name). If that
// one is taken on IPv6 and r lets the port be chosen
// (a range, an ephemeral port), it asks for r again on IPv4 — its search
// goes on after *v4, wrapping, and skips *v4, held until the new port is
// — and tries again, as moby's bindHostPorts does; *v4 is always the
// IPv4 port held.
func (c *Controller) holdTwin(r HostPortRequest, v4 *HostPort, target6 netip.AddrPort) (HostPort, error) {
	for attempt := 1; ; attempt++ {
		got, err := c.portHolder().Hold([]HostPortRequest{{Proto: v4.Proto, HostIP: netip.IPv6Unspecified(),
			Start: v4.Port, End: v4.Port, Container: target6, Proxied: c.proxyOn()}})
		if err == nil {
			return got[0], nil
		}
		fixed := r.Start != 0 && r.Start == r.End
		if fixed || !errdefs.Is(err, errdefs.KindConflict) || attempt == twinAttempts {
			return HostPort{}, err
		}
		// The same range again: its search starts after the port just
		// tried (held meanwhile), wrapping, as moby's retry does.
		moved, err := c.portHolder().Hold([]HostPortRequest{r})
		if err != nil {
			return HostPort{}, err
		}
		if err := c.portHolder().Release([]HostPort{*v4}); err != nil {
			c.log.Warn("release a host port", "port", v4.String(), "err", err)
		}
		*v4 = moved[0]
	}
}

// connectivityError is libnetwork's wrapping of a driver's failure to
// publish an endpoint's ports (sbJoin): the endpoint's name — its
// container's — and full ID come first, and the whole is the daemon's
// failure (500), as sbJoin's errdefs.System makes it, whatever the
// port's own kind (berth keeps that one inside, for its own checks).
func connectivityError(ep *Endpoint, err error) error {
	return errdefs.WithKind(errdefs.KindUnknown, fmt.Errorf("driver failed programming external connectivity on endpoint %s (%s): %w", ep.Name, ep.ID, err))
}

// releasePorts lets ep's host ports go.
func (c *Controller) releasePorts(ep *Endpoint) error {
	return c.releaseMappings(ep, ep.Ports)
}

// releaseMappings is releasePorts for ms, mappings of ep.
func (c *Controller) releaseMappings(ep *Endpoint, ms []PortMapping) error {
	if len(ms) == 0 {
		return nil
	}
	if err := c.portHolder().Release(hostPorts(ms)); err != nil {
		return fmt.Errorf("release host ports of endpoint %s: %w", ep.ID[:12], err)
	}
	return nil
}

func hostPorts(ms []PortMapping) []HostPort {
	out := make([]HostPort, 0, len(ms))
	for _, m := range ms {
		if !m.Routed() {
			out = append(out, HostPort{Proto: m.Proto, HostIP: m.HostIP, Port: m.HostPort})
		}
	}
	return out
}

// firewallPorts is what the firewall needs of ep's mappings: the IPv4
// ones to its IPv4 address, and the IPv6 ones to its IPv6 address when
// it has one (as Docker's ip6tables DNAT). An IPv6 mapping of an
// endpoint without IPv6 is the forwarder's alone (forward). In the
// families of direct, those in which ep's network opens direct routing
// (directFamilies), each container side a port is published to is a
// routed element too, once however many host ports lead to it.
func firewallPorts(ep *Endpoint, direct portFamilies) []firewall.PortMapping {
	return firewallMappings(ep, ep.Ports, direct)
}

// directFamilies are the families in which n takes traffic routed
// straight to a published port's container side (firewall/direct.go).
// A network's options never change, and the daemon's setting only at a
// start, which rebuilds the whole table: an endpoint's elements are the
// same when it publishes and when it withdraws.
func (c *Controller) directFamilies(n *Network) portFamilies {
	if n == nil || n.Driver != DriverBridge {
		return portFamilies{}
	}
	fn := c.firewallNetwork(n)
	return portFamilies{
		v4: fn.Subnet.IsValid() && fn.OpensDirect(fn.GatewayMode4),
		v6: fn.Subnet6.IsValid() && fn.OpensDirect(fn.GatewayMode6),
	}
}

// directFamiliesOf is directFamilies for ep's network.
func (c *Controller) directFamiliesOf(ep *Endpoint) portFamilies {
	c.mu.RLock()
	n := c.networks[ep.NetworkID]
	c.mu.RUnlock()
	return c.directFamilies(n)
}

// firewallMappings is firewallPorts for ms, mappings of ep, all of each
// family they have (the direct elements of a family are made from its
// mappings alone).
func firewallMappings(ep *Endpoint, ms []PortMapping, direct portFamilies) []firewall.PortMapping {
	out := make([]firewall.PortMapping, 0, len(ms))
	var sides []firewall.PortMapping
	var seen map[firewall.PortMapping]bool // made at the first side: a range of thousands stays linear
	for _, m := range ms {
		proto, err := firewall.ParseProto(m.Proto)
		if err != nil {
			continue // validated before it was recorded
		}
		to := ep.Address
		if !m.HostIP.Is4() {
			to = ep.Address6
		}
		if !to.IsValid() {
			continue
		}
		if m.Routed() {
			out = append(out, firewall.PortMapping{Proto: proto, Addr: to.Addr(), Port: m.Port, Routed: true})
			continue
		}
		out = append(out, firewall.PortMapping{Proto: proto, HostIP: m.HostIP, HostPort: m.HostPort, Addr: to.Addr(), Port: m.Port})
		if side := (firewall.PortMapping{Proto: proto, Addr: to.Addr(), Port: m.Port, Routed: true}); direct.has(m) && !seen[side] {
			if seen == nil {
				seen = map[firewall.PortMapping]bool{}
			}
			seen[side] = true
			sides = append(sides, side)
		}
	}
	return append(out, sides...)
}

// addPorts publishes ep's ports: the IPv4 ones in the firewall, the IPv6
// ones by forwarding.
func (c *Controller) addPorts(ctx context.Context, ep *Endpoint) error {
	return c.addMappings(ctx, ep, ep.Ports)
}

// addMappings is addPorts for ms, mappings of ep.
func (c *Controller) addMappings(ctx context.Context, ep *Endpoint, ms []PortMapping) error {
	if len(ms) == 0 {
		return nil
	}
	if err := c.cfg.Firewall.AddPorts(ctx, firewallMappings(ep, ms, c.directFamiliesOf(ep))); err != nil {
		return connectivityError(ep, err)
	}
	for _, m := range ms {
		if err := c.forward(ep, m); err != nil {
			return connectivityError(ep, err)
		}
	}
	return nil
}

// proxyOn reports whether the daemon's userland proxy serves IPv6 ports
// (dockerd's --userland-proxy, on unless NoUserlandProxy).
func (c *Controller) proxyOn() bool { return !c.cfg.NoUserlandProxy }

// reaches6 reports whether an IPv6 host port can reach ep: by DNAT to its
// IPv6 address, or through the userland proxy to its IPv4 one.
func (c *Controller) reaches6(ep *Endpoint) bool { return ep.Address6.IsValid() || c.proxyOn() }

// proxyTarget returns where the userland proxy sends the connections of
// m, a mapping of ep: ep's IPv6 address, or its IPv4 one when it has
// none (docker-proxy's choice). It is false for a mapping no proxy
// serves: an IPv4 one (the firewall's), a routed one (no host port), and
// every one without the proxy (NoUserlandProxy), where an endpoint with
// IPv6 is still reached by DNAT, except on ::1, as with dockerd's
// --userland-proxy=false.
func (c *Controller) proxyTarget(ep *Endpoint, m PortMapping) (netip.AddrPort, bool) {
	to := ep.Address.Addr()
	if ep.Address6.IsValid() {
		to = ep.Address6.Addr()
	}
	if m.HostIP.Is4() || !to.IsValid() || m.Routed() || !c.proxyOn() {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(to, m.Port), true
}

// forward has the holder forward m, an IPv6 mapping of ep, as
// proxyTarget says. For an endpoint with IPv6 the firewall DNATs what
// comes from elsewhere, and the forwarder serves what the DNAT cannot
// take: connections to ::1.
func (c *Controller) forward(ep *Endpoint, m PortMapping) error {
	to, ok := c.proxyTarget(ep, m)
	if !ok {
		return nil
	}
	f, ok := c.portHolder().(PortForwarder)
	if !ok {
		return fmt.Errorf("cannot publish %s: no forwarder for IPv6 ports", m)
	}
	return f.Forward(HostPort{Proto: m.Proto, HostIP: m.HostIP, Port: m.HostPort}, to)
}

// delPorts withdraws ep's ports from the firewall.
func (c *Controller) delPorts(ctx context.Context, ep *Endpoint) error {
	return c.delMappings(ctx, ep, ep.Ports)
}

// delMappings is delPorts for ms, mappings of ep.
func (c *Controller) delMappings(ctx context.Context, ep *Endpoint, ms []PortMapping) error {
	if len(ms) == 0 {
		return nil
	}
	if err := c.cfg.Firewall.DelPorts(ctx, firewallMappings(ep, ms, c.directFamiliesOf(ep))); err != nil {
		return fmt.Errorf("withdraw ports of endpoint %s: %w", ep.ID[:12], err)
	}
	return nil
}

// publishedPorts returns the mappings of every ready endpoint, for the
// firewall's rebuild.
func (c *Controller) publishedPorts() []firewall.PortMapping {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []firewall.PortMapping
	for _, ep := range c.endpoints {
		if ep.State == EndpointReady {
			out = append(out, firewallPorts(ep, c.directFamilies(c.networks[ep.NetworkID]))...)
		}
	}
	return out
}

// reholdPorts takes the host ports of ready endpoints again after a
// restart (the daemon's sockets died with it). A port that some other
// process took meanwhile stays published in the firewall — the container
// still owns it — and is logged.
func (c *Controller) reholdPorts() {
	type published struct {
		ep *Endpoint
		m  PortMapping
	}
	c.mu.Lock()
	var want []published
	for _, ep := range c.endpoints {
		if ep.State == EndpointReady {
			for _, m := range ep.Ports {
				if !m.Routed() { // no host port to hold
					want = append(want, published{ep, m})
				}
			}
		}
	}
	c.mu.Unlock()
	for _, p := range want {
		hp := HostPort{Proto: p.m.Proto, HostIP: p.m.HostIP, Port: p.m.HostPort}
		if p.m.HostIP.Is6() && !c.reaches6(p.ep) {
			// Published by a daemon with the userland proxy: the port
			// stays held, as recorded, and refuses connections until
			// the container is started again without it.
			c.log.Warn("port published through the userland proxy, which is now off: it refuses connections until the container restarts",
				"container", p.ep.Name, "port", hp.String())
		}
		if err := c.holdAndForward(p.ep, p.m); err != nil {
			c.log.Warn("cannot hold published host port again; will retry", "port", hp.String(), "err", err)
			c.mu.Lock()
			if c.unheld == nil {
				c.unheld = map[HostPort]bool{}
			}
			c.unheld[hp] = true
			c.mu.Unlock()
		}
	}
}

// RetryUnheldPorts holds again the published host ports that reholdPorts
// could not (see unheld) and that a ready endpoint still publishes; the
// daemon calls it every few seconds. It holds them under mu, where a
// Leave marks its endpoint deleting before it releases the ports, so that
// a port is never held for an endpoint that is going.
func (c *Controller) RetryUnheldPorts() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.unheld) == 0 {
		return
	}
	for hp := range c.unheld {
		ep, m := c.publisherLocked(hp)
		switch {
		case ep == nil: // no longer published
			delete(c.unheld, hp)
		case c.holdAndForward(ep, m) == nil:
			delete(c.unheld, hp)
			c.log.Info("holding published host port again", "port", hp.String())
		}
	}
}

// publisherLocked (c.mu held) finds the ready endpoint that publishes hp.
func (c *Controller) publisherLocked(hp HostPort) (*Endpoint, PortMapping) {
	for _, ep := range c.endpoints {
		if ep.State != EndpointReady {
			continue
		}
		for _, m := range ep.Ports {
			if m.Proto == hp.Proto && m.HostIP == hp.HostIP && m.HostPort == hp.Port {
				return ep, m
			}
		}
	}
	return nil, PortMapping{}
}

// holdAndForward holds the host port of m, a mapping ep publishes, and
// forwards it if it is an IPv6 one.
func (c *Controller) holdAndForward(ep *Endpoint, m PortMapping) error {
	_, proxied := c.proxyTarget(ep, m)
	held, err := c.portHolder().Hold([]HostPortRequest{{Proto: m.Proto, HostIP: m.HostIP, Start: m.HostPort, End: m.HostPort, Proxied: proxied}})
	if err != nil {
		return err
	}
	if err := c.forward(ep, m); err != nil {
		return errors.Join(err, c.portHolder().Release(held))
	}
	return nil
}

// PortsOf returns the published ports of the endpoints of a sandbox, in
// interface order.
func (c *Controller) PortsOf(sandboxID string) []PortMapping {
	var out []PortMapping
	for _, a := range c.Attachments(sandboxID) {
		out = append(out, a.Endpoint.Ports...)
	}
	return slices.Clip(out)
}

// recordPorts keeps reqs, if any, as the ports of ep's sandbox; for
// the families in fam — those ep is to publish as the sandbox's gateway
// and no other endpoint publishes yet, which Join has worked out — it
// holds the host ports of the sandbox's ports and records the mappings
// with ep before any kernel object is made for them. The families
// another endpoint publishes move once ep is made (movePorts).
func (c *Controller) recordPorts(n *Network, ep *Endpoint, reqs []PortRequest, fam portFamilies) error {
	if err := validatePortRequests(reqs); err != nil {
		return err
	}
	c.mu.RLock()
	publish, kept := c.joinPortsLocked(n, ep, reqs, fam)
	var near []PortMapping
	if len(publish) > 0 {
		near = c.sandboxMappingsLocked(ep.SandboxID, ep)
	}
	c.mu.RUnlock()
	if len(publish) == 0 && kept == nil {
		return nil
	}
	ms, err := c.holdPorts(n, ep, publish, fam, near)
	if err != nil {
		return err
	}
	c.mu.Lock()
	ep.Ports = ms
	var also func(store.Tx) error
	if kept != nil {
		also = func(tx store.Tx) error { return tx.Put(store.BucketSandboxes, kept.ID, kept) }
	}
	d, err := c.recordEndpointLocked(ep, also)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	if kept != nil {
		c.sandboxes[kept.ID] = kept
	}
	c.mu.Unlock()
	// The sync is waited for without the lock: every reader (docker ps,
	// inspect) would queue behind the disk otherwise.
	return d.Wait()
}

// joinPortsLocked (c.mu held, read or write) returns the ports ep is to
// publish — its sandbox's, when ep is to be a gateway of the sandbox
// (fam) — and, when reqs are new ports of the sandbox, its record with
// them, to put with ep's.
func (c *Controller) joinPortsLocked(n *Network, ep *Endpoint, reqs []PortRequest, fam portFamilies) ([]PortRequest, *Sandbox) {
	sb, ok := c.sandboxes[ep.SandboxID]
	if !ok {
		return nil, nil
	}
	var kept *Sandbox
	if len(reqs) > 0 {
		cp := *sb
		cp.Ports = slices.Clone(reqs)
		sb, kept = &cp, &cp
	}
	if len(sb.Ports) == 0 || !publishesPorts(n) || !fam.any() {
		return nil, kept
	}
	return sb.Ports, kept
}

// sandboxMappingsLocked (c.mu held) are the mappings the endpoints of a
// sandbox other than but publish.
func (c *Controller) sandboxMappingsLocked(sandboxID string, but *Endpoint) []PortMapping {
	var out []PortMapping
	for _, o := range c.bySandbox[sandboxID] {
		if o != but {
			out = append(out, o.Ports...)
		}
	}
	return out
}
