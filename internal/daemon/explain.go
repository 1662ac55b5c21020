package daemon

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/firewall"
	"github.com/berth-net/berth/internal/firewall/nftables"
	"github.com/berth-net/berth/internal/network"
)

// Explain says what berth's table does to a new connection between two
// ends (berth explain), and whether another table's forward chain drops
// what berth lets through. The table is walked by firewall.Explain; this
// file finds the packet: the ends' addresses, the interface it arrives
// on (the container's own route to the destination, read in its
// namespace), and the host's routing decisions.
func (d *Daemon) Explain(ctx context.Context, req network.ExplainRequest) (network.Explanation, error) {
	proto, err := explainProto(req)
	if err != nil {
		return network.Explanation{}, err
	}
	host, err := netlink.NewHandle()
	if err != nil {
		return network.Explanation{}, fmt.Errorf("open netlink: %w", err)
	}
	defer host.Close()
	from, err := d.explainEnd(req.From)
	if err != nil {
		return network.Explanation{}, err
	}
	to, err := d.explainEnd(req.To)
	if err != nil {
		return network.Explanation{}, err
	}
	six := req.IPv6 || from.addr.Is6() || to.addr.Is6()
	if !six && !from.addr.IsValid() && !to.addr.IsValid() && (from.only6() || to.only6()) {
		six = true // an IPv6-only network's containers
	}
	for _, a := range []netip.Addr{from.addr, to.addr} {
		if a.IsValid() && a.Is6() != six {
			return network.Explanation{}, errdefs.Invalid("%s is an %s address, and the packet is %s: give two ends of one family (-6 takes the containers' IPv6 addresses)", a, family(a.Is6()), family(six))
		}
	}
	if req.In != "" {
		if !from.addr.IsValid() {
			return network.Explanation{}, errdefs.Invalid("--in is for a packet from an address: a container's or the host's own packets leave by their routes")
		}
		if _, err := host.LinkByName(req.In); err != nil {
			return network.Explanation{}, errdefs.Invalid("no interface %q in the host", req.In)
		}
	}
	p := firewall.Packet{Proto: proto, Dport: req.Port}
	if p.Dst, err = d.explainDst(host, from, to, six, req.In); err != nil {
		return network.Explanation{}, err
	}
	out := network.Explanation{To: to.describe(p.Dst)}
	switch {
	case from.ctr != "":
		var stays *firewall.Step
		var onLink bool
		if p.Src, p.Iif, onLink, stays, err = explainFromContainer(from, p.Dst); err != nil {
			return network.Explanation{}, err
		}
		if onLink {
			// On the container's own link: switched by the bridge, unless
			// it is the host's own address there (the gateway).
			rt, err := routeGet(host, p.Dst)
			p.Switched = err != nil || !rt.local
		}
		out.From = from.describe(p.Src)
		if stays != nil {
			// It never reaches the host: the container's own routes decide.
			out.Packet = strings.Replace(p.String(), " from the host", " inside container "+from.ctr, 1)
			out.Steps, out.Decision = []firewall.Step{*stays}, stays
			out.Outcome = firewall.NoRoute
			if stays.Effect == forTheContainer {
				out.Outcome = firewall.Delivered
				if p.HasPorts() {
					refuseUnheard(&out.Explanation, p, p.Dst, fmt.Sprintf("/proc/%d/net", from.pid), "container "+from.ctr)
				}
			}
			return out, nil
		}
	case from.host:
		if rt, err := routeGet(host, p.Dst); err == nil && rt.local {
			p.Src = p.Dst
		} else if err == nil {
			p.Src = rt.Src
		}
		out.From = from.describe(p.Src)
	default:
		p.Src, p.Iif = from.addr, req.In
		rt, err := routeGet(host, p.Src)
		switch {
		case err == nil && rt.local:
			p.Iif = "" // one of the host's own addresses
		case p.Iif == "" && err != nil:
			return network.Explanation{}, errdefs.Invalid("no route to %s, so no interface it would arrive on: name one with --in", p.Src)
		case p.Iif == "":
			p.Iif = rt.oif
		}
		out.From = from.describe(p.Src)
	}
	rs, err := d.net.Ruleset()
	if err != nil {
		return network.Explanation{}, err
	}
	hr := &hostRouter{h: host}
	ex := firewall.Explain(rs, p, hr)
	if hr.otherErr != nil {
		ex.Notes = append(ex.Notes, "the host's other tables could not be read: "+hr.otherErr.Error())
	}
	d.explainNotes(&ex, p)
	out.Explanation = ex
	return out, nil
}

func explainProto(req network.ExplainRequest) (firewall.L4Proto, error) {
	switch strings.ToLower(req.Proto) {
	case "":
		if req.Port == 0 {
			return firewall.ProtoICMP, nil
		}
		return firewall.ProtoTCP, nil
	case "tcp", "udp":
		if req.Port == 0 {
			return 0, errdefs.Invalid("a %s packet needs a port: give the destination as ADDRESS:PORT or NAME:PORT", req.Proto)
		}
		if strings.EqualFold(req.Proto, "udp") {
			return firewall.ProtoUDP, nil
		}
		return firewall.ProtoTCP, nil
	case "icmp":
		if req.Port != 0 {
			return 0, errdefs.Invalid("an icmp packet has no port")
		}
		return firewall.ProtoICMP, nil
	}
	return 0, errdefs.Invalid("invalid protocol %q: tcp, udp or icmp", req.Proto)
}

// explainEnd is one end of the connection.
type explainEnd struct {
	host bool       // the host itself
	addr netip.Addr // an address given as such
	// ctr is a container's name; sandbox its namespace, atts its
	// networks in interface order.
	ctr     string
	sandbox string
	atts    []network.Attachment
	pid     int // its init, whose /proc/PID/net is its namespace's
}

func (d *Daemon) explainEnd(ref string) (explainEnd, error) {
	if ref == "host" {
		return explainEnd{host: true}, nil
	}
	if a, err := netip.ParseAddr(ref); err == nil {
		a = a.Unmap()
		if a.IsUnspecified() || a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
			return explainEnd{}, errdefs.Invalid("%s is not a unicast address: explain follows connections between two hosts", a)
		}
		return explainEnd{addr: a}, nil
	}
	cs, err := d.lookup(ref)
	if err != nil {
		return explainEnd{}, err
	}
	cs.mu.Lock() // what guards the record's state (runs, exits and connects write it under it)
	c := cloneContainer(cs.c)
	cs.mu.Unlock()
	name := strings.TrimPrefix(c.Name, "/")
	if c.State.SandboxID == "" {
		return explainEnd{}, errdefs.Conflict("container %s is not running: it has no network namespace", name)
	}
	sb, err := d.net.Sandbox(c.State.SandboxID)
	if err != nil {
		return explainEnd{}, err
	}
	if sb.HostNetwork {
		return explainEnd{}, errdefs.Invalid("container %s is on the host's network: its packets are the host's (use host)", name)
	}
	atts := d.net.Attachments(sb.ID)
	if !slices.ContainsFunc(atts, func(at network.Attachment) bool { return at.Network.Bridge != nil }) {
		return explainEnd{}, errdefs.Invalid("container %s is on no bridge network (--network none): nothing of it reaches berth's firewall", name)
	}
	return explainEnd{ctr: name, sandbox: sb.Key, atts: atts, pid: c.State.Pid}, nil
}

// only6 reports whether the end is a container with IPv6 addresses and
// no IPv4 one.
func (e explainEnd) only6() bool {
	var v4, v6 bool
	for _, at := range e.atts {
		v4 = v4 || at.Endpoint.Address.IsValid()
		v6 = v6 || at.Endpoint.Address6.IsValid()
	}
	return v6 && !v4
}

func (e explainEnd) describe(a netip.Addr) string {
	switch {
	case e.host:
		return fmt.Sprintf("the host (%s)", a)
	case e.ctr == "":
		return a.String()
	}
	for _, at := range e.atts {
		if at.Endpoint.Address.Addr() == a || at.Endpoint.Address6.Addr() == a {
			return fmt.Sprintf("container %s (%s on %s, %s)", e.ctr, a, at.Network.Name, at.Endpoint.IfName)
		}
	}
	return fmt.Sprintf("container %s (%s)", e.ctr, a)
}

// addrOf is an endpoint's address of the family.
func addrOf(ep *network.Endpoint, six bool) netip.Addr {
	if six {
		return ep.Address6.Addr()
	}
	return ep.Address.Addr()
}

// explainDst is the destination address: to's own, or for a container
// its address on a network it shares with from (its first one else);
// "host" is from's gateway for a container, loopback for the host, and
// the host's address on the interface a packet from an address arrives
// on.
func (d *Daemon) explainDst(host *netlink.Handle, from, to explainEnd, six bool, in string) (netip.Addr, error) {
	switch {
	case to.addr.IsValid():
		return to.addr, nil
	case to.ctr != "":
		shared := func(at network.Attachment) bool {
			for _, f := range from.atts {
				if f.Network.ID == at.Network.ID {
					return true
				}
			}
			return false
		}
		var first netip.Addr
		for _, at := range to.atts {
			a := addrOf(at.Endpoint, six)
			if !a.IsValid() {
				continue
			}
			if shared(at) {
				return a, nil
			}
			if !first.IsValid() {
				first = a
			}
		}
		if !first.IsValid() {
			return netip.Addr{}, errdefs.Invalid("container %s has no %s address", to.ctr, family(six))
		}
		return first, nil
	case from.ctr != "":
		var foreign netip.Addr
		for _, at := range from.atts {
			cfg := at.Network.IPv4
			if six {
				cfg = at.Network.IPv6
			}
			mode := at.Network.Bridge.GatewayMode4
			if six {
				mode = at.Network.Bridge.GatewayMode6
			}
			if cfg == nil || !cfg.Gateway.IsValid() || !addrOf(at.Endpoint, six).IsValid() || mode == firewall.ModeIsolated {
				continue // an isolated network's bridge has no address
			}
			if !six && at.Network.Bridge.InhibitIPv4 {
				// A router of the user's, unless the host has its
				// address on the bridge.
				if rt, err := routeGet(host, cfg.Gateway); err != nil || !rt.local {
					foreign = cfg.Gateway
					continue
				}
			}
			return cfg.Gateway, nil
		}
		if foreign.IsValid() {
			return netip.Addr{}, errdefs.Invalid("container %s's IPv4 gateway %s is not an address of the host's: its network inhibits IPv4 on the bridge (inhibit_ipv4), and nothing put that address there", from.ctr, foreign)
		}
		return netip.Addr{}, errdefs.Invalid("container %s has no %s gateway", from.ctr, family(six))
	case from.host:
		if six {
			return netip.IPv6Loopback(), nil
		}
		return netip.MustParseAddr("127.0.0.1"), nil
	}
	six = six || from.addr.Is6()
	if in == "" {
		rt, err := routeGet(host, from.addr)
		if err != nil {
			return netip.Addr{}, errdefs.Invalid("no route to %s: name the interface it arrives on with --in", from.addr)
		}
		in = rt.oif
	}
	link, err := host.LinkByName(in)
	if err != nil {
		return netip.Addr{}, errdefs.Invalid("no interface %q in the host", in)
	}
	fam := netlink.FAMILY_V4
	if six {
		fam = netlink.FAMILY_V6
	}
	addrs, err := host.AddrList(link, fam)
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && !ip.IsLinkLocalUnicast() {
			return ip.Unmap(), nil
		}
	}
	return netip.Addr{}, errdefs.Invalid("the host has no %s address on %s", family(six), in)
}

func family(six bool) string {
	if six {
		return "IPv6"
	}
	return "IPv4"
}

// explainFromContainer reads the container's route to dst in its
// namespace: the interface it leaves by is one of its endpoints, and
// that endpoint's bridge is where the packet arrives in the host. stays
// is set for a packet that never leaves the container: dst is its own,
// or it has no route there (an internal network gives none out).
func explainFromContainer(from explainEnd, dst netip.Addr) (src netip.Addr, iif string, onLink bool, stays *firewall.Step, err error) {
	ns, err := netns.GetFromPath(from.sandbox)
	if err != nil {
		return src, "", false, nil, fmt.Errorf("open the namespace of container %s: %w", from.ctr, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return src, "", false, nil, fmt.Errorf("open netlink in container %s: %w", from.ctr, err)
	}
	defer h.Close()
	rt, err := routeGet(h, dst)
	switch {
	case err != nil:
		for _, at := range from.atts {
			if src = addrOf(at.Endpoint, dst.Is6()); src.IsValid() {
				break
			}
		}
		return src, "", false, &firewall.Step{Hook: "container", Effect: "no route in the container: " + err.Error()}, nil
	case rt.local:
		return dst, "", false, &firewall.Step{Hook: "container", Effect: forTheContainer}, nil
	}
	for _, at := range from.atts {
		if at.Endpoint.IfName != rt.oif {
			continue
		}
		if at.Network.Bridge == nil {
			break
		}
		src = rt.Src
		if !src.IsValid() {
			src = addrOf(at.Endpoint, dst.Is6())
		}
		return src, at.Network.Bridge.Name, rt.onLink, nil, nil
	}
	return src, "", false, nil, errdefs.Invalid("container %s sends to %s out of %s, which is not one of berth's bridge networks", from.ctr, dst, rt.oif)
}

const forTheContainer = "for the container itself: it never leaves the container's namespace"

// route is one answer of RTM_GETROUTE.
type route struct {
	oif   string
	local bool
	// onLink: no gateway, the destination is on the interface's link.
	onLink bool
	Src    netip.Addr
}

func routeGet(h *netlink.Handle, dst netip.Addr) (route, error) {
	rts, err := h.RouteGet(net.IP(dst.AsSlice()))
	if err != nil {
		return route{}, err
	}
	if len(rts) == 0 {
		return route{}, errors.New("no route")
	}
	rt := rts[0]
	out := route{local: rt.Type == unix.RTN_LOCAL, onLink: rt.Gw == nil}
	if src, ok := netip.AddrFromSlice(rt.Src); ok {
		out.Src = src.Unmap()
	}
	if l, err := h.LinkByIndex(rt.LinkIndex); err == nil {
		out.oif = l.Attrs().Name
	}
	if out.local {
		out.oif = "lo"
	}
	return out, nil
}

// hostRouter is firewall.Host for the daemon's namespace, the host:
// its routes, sysctls, and its other tables' forward chains.
type hostRouter struct {
	h        *netlink.Handle
	otherErr error
}

func (r *hostRouter) Route(dst netip.Addr) (firewall.Route, error) {
	rt, err := routeGet(r.h, dst)
	if err != nil {
		return firewall.Route{}, err
	}
	return firewall.Route{Oif: rt.oif, Local: rt.local}, nil
}

func (r *hostRouter) IsBridge(name string) bool {
	l, err := r.h.LinkByName(name)
	return err == nil && l.Type() == "bridge"
}

func (*hostRouter) BridgeNetfilter(six bool) bool {
	if six {
		return sysctlOn("/proc/sys/net/bridge/bridge-nf-call-ip6tables")
	}
	return sysctlOn("/proc/sys/net/bridge/bridge-nf-call-iptables")
}

func (*hostRouter) Forwarding(six bool) bool {
	if six {
		return sysctlOn("/proc/sys/net/ipv6/conf/all/forwarding")
	}
	return sysctlOn("/proc/sys/net/ipv4/ip_forward")
}

func sysctlOn(path string) bool {
	b, err := os.ReadFile(path)
	return err == nil && strings.TrimSpace(string(b)) == "1"
}

// OtherForward: a packet berth's table forwards still goes through the
// forward chains of the host's other tables, where a drop is final
// (README, "berth beside the host's firewall"). nftables.OtherForward
// evaluates their rules for this packet.
//
// The answer crosses the forward hook too, the other way and with ct
// state established: berth's own table accepts it, a host firewall
// without an "established, related" accept drops it, and the connection
// fails although its first packet went through. So the first packet of
// the reply is evaluated after the connection's.
func (r *hostRouter) OtherForward(p firewall.Packet, oif string, dnat bool) (firewall.Step, firewall.Outcome) {
	first := nftables.ForwardPacket{Iif: p.Iif, Oif: oif, Src: p.Src, Dst: p.Dst, Proto: uint8(p.Proto), Dport: p.Dport, DNAT: dnat}
	return r.other("forward", first, nftables.OtherForward)
}

// OtherPrerouting: the packet as it arrives goes through the other
// tables' prerouting filter chains (a raw drop). Replies are not
// evaluated there: they arrive addressed to the host, before conntrack
// turns a masquerade back.
func (r *hostRouter) OtherPrerouting(pre, post firewall.Packet, dnat bool) (firewall.Step, firewall.Outcome) {
	fpre := nftables.ForwardPacket{Iif: pre.Iif, Src: pre.Src, Dst: pre.Dst, Proto: uint8(pre.Proto), Dport: pre.Dport}
	fpost := nftables.ForwardPacket{Iif: post.Iif, Src: post.Src, Dst: post.Dst, Proto: uint8(post.Proto), Dport: post.Dport, DNAT: dnat}
	return r.other("prerouting", fpre, func(ns string, _ nftables.ForwardPacket) (*nftables.ForwardDecision, []nftables.ForwardDecision, error) {
		return nftables.OtherPrerouting(ns, fpre, fpost)
	})
}

// OtherInput: a packet for the host itself goes through the other
// tables' input chains (a host firewall in front of its services), and
// the host's answer through their output chains.
func (r *hostRouter) OtherInput(p firewall.Packet) (firewall.Step, firewall.Outcome) {
	first := nftables.ForwardPacket{Iif: p.Iif, Src: p.Src, Dst: p.Dst, Proto: uint8(p.Proto), Dport: p.Dport}
	return r.other("input", first, nftables.OtherInput)
}

// other evaluates the first packet and then its reply with eval.
func (r *hostRouter) other(hook string, first nftables.ForwardPacket, eval func(string, nftables.ForwardPacket) (*nftables.ForwardDecision, []nftables.ForwardDecision, error)) (firewall.Step, firewall.Outcome) {
	packets := []nftables.ForwardPacket{first, nftables.ReplyTo(first)}
	if hook == "prerouting" {
		packets = packets[:1]
	}
	for _, fp := range packets {
		dropped, undecided, err := eval("", fp)
		if fp.Reply && hook == "input" {
			hook = "output"
		}
		what := ""
		if fp.Reply {
			what = " of the reply (ct state established)"
		}
		switch {
		case err != nil:
			r.otherErr = err
			return firewall.Step{}, ""
		case dropped != nil:
			hint := ""
			if hook == "forward" {
				hint = " (docker info says what to add there)"
			}
			return firewall.Step{Hook: hook, Chain: dropped.String(), Rule: dropped.Rule, Effect: "drop" + what + hint}, firewall.Dropped
		case len(undecided) > 0:
			u := undecided[0]
			return firewall.Step{Hook: hook, Chain: u.String(), Rule: u.Rule,
				Effect: "undecided" + what + ": this rule matches on what explain does not read (a mark, a source port, an interval set, an xtables match); see nft -a list chain " + u.Family + " " + u.Table + " " + u.Chain}, firewall.Undecided
		}
	}
	return firewall.Step{}, ""
}

// explainNotes adds what the walk through the tables cannot say:
//   - a packet for one of berth's container subnets that leaves by
//     another interface never reaches its container (an isolated
//     network's bridge has no address, so the host has no route into
//     it): no route;
//   - a packet delivered to the host itself: which published ports of
//     its port are elsewhere (on another address, the other family), and
//     whether the daemon's proxy serves it; nobody checks for a listener.
func (d *Daemon) explainNotes(ex *firewall.Explanation, p firewall.Packet) {
	if ex.Outcome != firewall.Delivered {
		return
	}
	dst := p.Dst
	if ex.DNAT.IsValid() {
		dst = ex.DNAT.Addr()
	}
	if ex.Oif != "" {
		for _, n := range d.net.Networks() {
			if n.Bridge == nil || n.Bridge.Name == ex.Oif {
				continue
			}
			for _, cfg := range []*network.IPConfig{n.IPv4, n.IPv6} {
				if cfg != nil && cfg.Subnet.Contains(dst) {
					step := firewall.Step{Hook: "routing", Effect: fmt.Sprintf("%s is in network %s, but the host routes it out of %s: the host has no route into %s (gateway mode isolated?), so it never reaches a container there", dst, n.Name, ex.Oif, n.Bridge.Name)}
					ex.Steps = append(ex.Steps, step)
					ex.Outcome, ex.Decision = firewall.NoRoute, &step
					return
				}
			}
		}
		d.explainAtContainer(ex, p, dst)
		return
	}
	if !p.HasPorts() {
		return
	}
	var elsewhere []string
	for _, u := range d.net.HostPortUses(p.Proto.String(), p.Dport) {
		m := u.Mapping
		serves := !m.HostIP.IsValid() || m.HostIP.IsUnspecified() && m.HostIP.Is6() == dst.Is6() || m.HostIP == dst
		switch {
		case u.Proxy.IsValid() && serves:
			ex.Notes = append(ex.Notes, fmt.Sprintf("the daemon's proxy holds %s and passes the connection on to %s (userland-proxy)", netip.AddrPortFrom(m.HostIP, m.HostPort), u.Proxy))
			return
		case u.Proxy.IsValid() || m.HostPort == 0:
		default:
			elsewhere = append(elsewhere, fmt.Sprintf("%s → %s", netip.AddrPortFrom(m.HostIP, m.HostPort), u.To))
		}
	}
	if len(elsewhere) > 0 {
		ex.Notes = append(ex.Notes, fmt.Sprintf("port %d/%s is published on %s only, not for %s: this packet is not DNATed", p.Dport, p.Proto, strings.Join(elsewhere, ", "), dst))
	}
	if nat, err := nftables.OtherNAT(""); err == nil && len(nat) > 0 {
		// A REDIRECT or DNAT of another table may send it elsewhere.
		ex.Notes = append(ex.Notes, fmt.Sprintf("%s has nat rules, which explain does not apply: a REDIRECT or DNAT there may send this packet elsewhere", strings.Join(nat, "; ")))
		return
	}
	refuseUnheardAt(ex, p, dst, "/proc/thread-self/net", "the host", d.proxiedV6Only(p))
}

// explainAtContainer follows a packet the host delivers into one of
// berth's bridges (ex.Oif) to the container that has its destination
// there: none has it (nobody answers the neighbour solicitation: the
// sender finds the host unreachable), or that container's own sockets
// decide, as for the host's.
func (d *Daemon) explainAtContainer(ex *firewall.Explanation, p firewall.Packet, dst netip.Addr) {
	if ex.DNAT.IsValid() {
		p.Dport = ex.DNAT.Port() // the container's port
	}
	for _, n := range d.net.Networks() {
		if n.Bridge == nil || n.Bridge.Name != ex.Oif {
			continue
		}
		var cfg *network.IPConfig
		for _, c := range []*network.IPConfig{n.IPv4, n.IPv6} {
			if c != nil && c.Subnet.Contains(dst) {
				cfg = c
			}
		}
		if cfg == nil || dst == cfg.Gateway {
			return
		}
		for _, ep := range d.net.Endpoints(n.ID) {
			if ep.Address.Addr() != dst && ep.Address6.Addr() != dst {
				continue
			}
			if !p.HasPorts() {
				return
			}
			cs := d.stateByID(ep.ContainerID)
			if cs == nil {
				return
			}
			cs.mu.Lock()
			pid, name := cs.c.State.Pid, cs.c.Name
			cs.mu.Unlock()
			if pid > 0 {
				refuseUnheard(ex, p, dst, fmt.Sprintf("/proc/%d/net", pid), "container "+name)
			}
			return
		}
		step := firewall.Step{Hook: "neighbour", Effect: fmt.Sprintf("no container has %s on network %s: nothing answers for it on %s, and the sender finds the host unreachable", dst, n.Name, ex.Oif)}
		ex.Steps = append(ex.Steps, step)
		ex.Outcome, ex.Decision = firewall.NoRoute, &step
		return
	}
}

// proxiedV6Only are the [::] sockets of the daemon's own proxy for p's
// port: they are IPv6-only (IPV6_V6ONLY), so they take no IPv4
// connection, which /proc/net/tcp6 does not show.
func (d *Daemon) proxiedV6Only(p firewall.Packet) bool {
	for _, u := range d.net.HostPortUses(p.Proto.String(), p.Dport) {
		if u.Proxy.IsValid() && u.Mapping.HostIP.Is6() && u.Mapping.HostIP.IsUnspecified() {
			return true
		}
	}
	return false
}

// refuseUnheard: a TCP connection to a port where no socket listens is
// refused by the kernel (a reset), whatever the firewall let in. The
// sockets are read from procNet (the /proc/PID/net of the namespace);
// a UDP datagram only gets a note, since a bound socket may drop it.
func refuseUnheard(ex *firewall.Explanation, p firewall.Packet, dst netip.Addr, procNet, where string) {
	refuseUnheardAt(ex, p, dst, procNet, where, false)
}

// refuseUnheardAt is refuseUnheard; with any6Only, a socket on [::] is
// known to be IPv6-only and takes no IPv4 connection.
func refuseUnheardAt(ex *firewall.Explanation, p firewall.Packet, dst netip.Addr, procNet, where string, any6Only bool) {
	at := netip.AddrPortFrom(dst, p.Dport)
	if p.Proto != firewall.ProtoTCP {
		ex.Notes = append(ex.Notes, fmt.Sprintf("the firewall lets it in to %s; whether a process there takes datagrams on %s is not checked", where, at))
		return
	}
	on, err := listening(procNet, dst, p.Dport, any6Only)
	switch {
	case err != nil:
		ex.Notes = append(ex.Notes, fmt.Sprintf("the firewall lets it in to %s; its listening sockets could not be read: %v", where, err))
	case !on:
		step := firewall.Step{Hook: "socket", Effect: fmt.Sprintf("no socket of %s listens on %s: the kernel refuses the connection (a reset)", where, at)}
		ex.Steps = append(ex.Steps, step)
		ex.Outcome, ex.Decision = firewall.Rejected, &step
	}
}

// listening reports whether a TCP socket listens on dst:port in the
// namespace whose /proc/PID/net is procNet: on dst itself, on the
// family's any-address, or on [::], which takes IPv4 too unless the
// socket set IPV6_V6ONLY (not visible here: the answer errs towards
// "listens", which claims no refusal, unless any6Only says that the
// [::] socket is IPv6-only).
func listening(procNet string, dst netip.Addr, port uint16, any6Only bool) (bool, error) {
	// /proc/thread-self/net is the namespace of the reading thread: keep
	// this goroutine on one (unlocked threads are all in the daemon's).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for _, file := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(procNet + "/" + file)
		if err != nil {
			if os.IsNotExist(err) && file == "tcp6" {
				continue // no IPv6 in the kernel
			}
			return false, err
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 4 || f[3] != "0A" { // TCP_LISTEN
				continue
			}
			addr, lport, ok := procSockAddr(f[1])
			if !ok || lport != port {
				continue
			}
			if addr == dst || addr.IsUnspecified() && (addr.Is6() == dst.Is6() || addr.Is6() && !any6Only) || addr.Is4In6() && addr.Unmap() == dst {
				return true, nil
			}
		}
	}
	return false, nil
}

// procSockAddr parses /proc/net/tcp's "0100007F:1F90": the address as
// 32-bit words in host byte order, the port in hex.
func procSockAddr(s string) (netip.Addr, uint16, bool) {
	h, p, ok := strings.Cut(s, ":")
	port, err := strconv.ParseUint(p, 16, 16)
	if !ok || err != nil || len(h)%8 != 0 || len(h) == 0 || len(h) > 32 {
		return netip.Addr{}, 0, false
	}
	raw := make([]byte, 0, 16)
	for i := 0; i < len(h); i += 8 {
		w, err := strconv.ParseUint(h[i:i+8], 16, 32)
		if err != nil {
			return netip.Addr{}, 0, false
		}
		raw = binary.NativeEndian.AppendUint32(raw, uint32(w))
	}
	a, ok := netip.AddrFromSlice(raw)
	return a, uint16(port), ok
}
