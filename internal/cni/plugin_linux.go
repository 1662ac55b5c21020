package cni

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"

	"github.com/berth-net/berth/internal/driver/bridge"
	"github.com/berth-net/berth/internal/driverapi"
	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/firewall"
	"github.com/berth-net/berth/internal/firewall/nftables"
)

// Owner tags: the ifalias of berth-cni's bridges and veths ("berth:" is
// the driver's prefix). The daemon's restore removes only the links tagged
// "endpoint:" and "network:" that it does not know, so it never takes
// these; their kinds tell an administrator who made them.
const (
	ownerNetwork  = "cni-network:"
	ownerEndpoint = "cni:"
)

// Main runs one CNI call: the command from getenv, the configuration from
// stdin, the result or error on stdout (log lines on stderr). It returns
// the process's exit status. Without CNI_COMMAND, args may ask for "ls".
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	if getenv(reapEnv) == "1" && getenv("CNI_COMMAND") == "" {
		return reapMarked(stderr)
	}
	if getenv("CNI_COMMAND") == "" {
		switch {
		case len(args) > 1 && args[1] == "ls" && len(args) <= 3:
			dir := DefaultDataDir
			if len(args) == 3 {
				dir = args[2]
			}
			return list(dir, stdout, stderr)
		case len(args) <= 1:
			return about(stderr)
		}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	out, err := run(stdin, getenv, log)
	if err != nil {
		var inner *Error
		e, ok := err.(*Error)
		switch {
		case ok:
		case errors.As(err, &inner):
			// Wrapped or joined with others (a rollback's): the code
			// of the CNI error inside, the whole story as the message.
			e = &Error{CNIVersion: inner.CNIVersion, Code: inner.Code, Msg: err.Error()}
		default:
			e = &Error{Code: CodeInternal, Msg: err.Error()}
		}
		if e.CNIVersion == "" {
			e.CNIVersion = LatestVersion
		}
		b, _ := json.Marshal(e)
		stdout.Write(append(b, '\n'))
		return 1
	}
	if len(out) > 0 {
		stdout.Write(append(out, '\n'))
	}
	return 0
}

func run(stdin io.Reader, getenv func(string) string, log *slog.Logger) ([]byte, error) {
	env, err := ParseEnv(getenv)
	if err != nil {
		return nil, err
	}
	if env.Command == CmdVersion {
		return versionAnswer(), nil
	}
	raw, err := io.ReadAll(stdin)
	if err != nil {
		return nil, &Error{Code: CodeIOFailure, Msg: "read network configuration", Details: err.Error()}
	}
	conf, err := parseConf(raw)
	if err != nil {
		return nil, err
	}
	n, err := conf.network()
	if err != nil {
		return nil, withVersion(err, conf.CNIVersion)
	}
	if (env.Command == CmdGC || env.Command == CmdStatus) && !atLeast(n.Version, "1.1.0") {
		return nil, withVersion(errorf(CodeIncompatibleVersion, "%s needs cniVersion 1.1.0 or later, the configuration says %q", env.Command, n.Version), n.Version)
	}
	if env.Command == CmdCheck && !atLeast(n.Version, "0.4.0") {
		return nil, withVersion(errorf(CodeIncompatibleVersion, "CHECK needs cniVersion 0.4.0 or later, the configuration says %q", n.Version), n.Version)
	}
	dir, err := openStateDir(n.DataDir)
	if err != nil {
		return nil, withVersion(err, n.Version)
	}
	defer dir.close()
	p := &plugin{env: env, conf: conf, n: n, dir: dir, log: log}
	defer p.closeKernel()
	var out []byte
	switch env.Command {
	case CmdAdd:
		out, err = p.add()
	case CmdDel:
		err = p.del()
	case CmdCheck:
		err = p.check()
	case CmdGC:
		err = p.gc()
	case CmdStatus:
		err = p.status()
	}
	return out, withVersion(err, n.Version)
}

// withVersion stamps a CNI error with the configuration's version; any
// other error becomes one (code 999, its message whole), so that the
// output's cniVersion is the configuration's, as the spec asks of every
// answer, not the latest this plugin speaks.
func withVersion(err error, v string) error {
	if err == nil {
		return nil
	}
	var e *Error
	if !errors.As(err, &e) {
		return &Error{CNIVersion: v, Code: CodeInternal, Msg: err.Error()}
	}
	if e.CNIVersion == "" {
		e.CNIVersion = v
	}
	return err
}

// plugin is one call, with the state directory locked.
type plugin struct {
	env  Env
	conf *netConf
	n    *Network
	dir  *stateDir
	log  *slog.Logger
	drv  *bridge.Driver
	fw   *nftables.Firewall
	// applied is what the table held when the state was loaded (nil
	// before), and then after each syncFirewall.
	applied *firewallView
	// marked says a Leave left a pair marked for deletion.
	marked bool
}

// load reads the state and notes what the table holds for it.
//
// The table is known to hold the state's view only when every attachment
// finished and the last change of the table did not fail: an ADD cut off
// between its recorded intent and its change of the table left a network
// or ports in the state that the table may not have (a later ADD on that
// network found nothing to add, and its container got no rules). Otherwise
// applied stays nil, and the first change rebuilds the table whole.
func (p *plugin) load() (*State, error) {
	s, err := p.dir.load()
	if err != nil {
		return nil, err
	}
	p.applied = nil
	if !s.TableDirty && !s.unfinished() {
		nets, ports := firewallNetworks(s)
		p.applied = &firewallView{nets, ports}
	}
	return s, nil
}

// kernel opens the driver and the firewall on first use.
func (p *plugin) kernel() (*bridge.Driver, *nftables.Firewall, error) {
	if p.drv != nil {
		return p.drv, p.fw, nil
	}
	d, err := bridge.NewWithGroups("", bridge.CNIGroups, p.log)
	if err != nil {
		return nil, nil, err
	}
	fw, err := nftables.NewTable("", TableNameFor(p.n.DataDir), p.log)
	if err != nil {
		d.Close()
		return nil, nil, err
	}
	p.drv, p.fw = d, fw
	return d, fw, nil
}

// closeKernel closes them. The pairs Leave cut off and marked are still
// there (CNIGroups leaves them marked): a process of their own deletes them
// (spawnReaper), so that the call does not wait for the kernel's RCU
// barrier; the next DEL's process, or a GC, deletes any it left.
func (p *plugin) closeKernel() {
	if p.drv == nil {
		return
	}
	p.drv.Close()
	p.fw.Close()
	if p.marked {
		spawnReaper(p.log)
	}
}

func (p *plugin) key() string { return Key(p.n.Name, p.env.ContainerID, p.env.IfName) }

// add is ADD: allocate and record (the intent), make the bridge, the veth
// pair and the rules, record it done. Anything that fails is undone.
func (p *plugin) add() ([]byte, error) {
	q, err := p.conf.request(p.env)
	if err != nil {
		return nil, err
	}
	s, err := p.load()
	if err != nil {
		return nil, err
	}
	key := p.key()
	if tag := bridge.AliasPrefix + ownerEndpoint + key; len(tag) > 255 {
		// Refused before anything is made: the kernel caps an
		// interface's alias, which tags the host veth with its owner.
		return nil, errorf(CodeInvalidConfig, "network name %q is too long: with the container ID and interface name it makes a %d-byte owner tag, and interfaces take at most 255", p.n.Name, len(tag))
	}
	if old, ok := s.Attachments[key]; ok {
		if old.Done {
			return nil, errorf(CodeInvalidConfig, "container %s already has interface %s on network %q; DEL it first", p.env.ContainerID, p.env.IfName, p.n.Name)
		}
		// An ADD that did not finish (the process was killed): undo it.
		if err := p.teardown(s, key); err != nil {
			return nil, err
		}
	}
	ips, err := s.Allocate(p.n, key, q.IPs)
	if err != nil {
		return nil, err
	}
	ports, err := portsFor(q.Ports, ips)
	if err != nil {
		return nil, err
	}
	if m, ok := askedTwice(ports); ok {
		return nil, errorf(CodePortTaken, "host port %d/%s is asked for twice in one request, for different container ports or host addresses", m.HostPort, m.Protocol)
	}
	if other, m := s.PortConflict(key, ports); other != "" {
		return nil, errorf(CodePortTaken, "host port %d/%s is already published by %s", m.HostPort, m.Protocol, other)
	}
	a := &Attached{
		Network: p.n.Name, ContainerID: p.env.ContainerID, IfName: p.env.IfName, Netns: p.env.Netns,
		HostIfName: bridge.RandomHostIfName(), MAC: macFor(q.MAC, ips).String(), IPs: ips, Ports: ports,
	}
	rule := NetworkRuleOf(p.n)
	if old, ok := s.Networks[p.n.Name]; ok && old != rule {
		return nil, errorf(CodeInvalidConfig, "network %q is configured differently from when its %d attachments were made (bridge, subnet, gateway or ipMasq); DEL them first, or give the new configuration another name",
			p.n.Name, s.attachedTo(p.n.Name))
	}
	if len(s.Idle) > 0 {
		d, _, err := p.kernel()
		if err != nil {
			return nil, err
		}
		s.dropGoneIdle(p.ownedBy(d))
	}
	if other := s.overlapping(p.n.Name, rule); other != "" {
		return nil, errorf(CodeInvalidConfig, "network %q's subnet overlaps %s", p.n.Name, other)
	}
	s.Attachments[key] = a
	s.Networks[p.n.Name] = rule
	if err := p.dir.save(s); err != nil {
		return nil, err
	}
	res, err := p.attach(s, a)
	if err != nil {
		return nil, errors.Join(err, p.teardown(s, key))
	}
	a.Done = true
	if err := p.dir.save(s); err != nil {
		return nil, errors.Join(err, p.teardown(s, key))
	}
	return res.encode(p.n.Version)
}

// ownedBy says whether a link is a bridge this plugin made or took over
// for network; an error reading the link counts as yes (the record stays).
func (p *plugin) ownedBy(d *bridge.Driver) func(bridge, network string) bool {
	return func(br, network string) bool {
		owned, err := d.OwnedBy(br, ownerNetwork+network)
		return owned || err != nil
	}
}

// attach is ADD's kernel work.
func (p *plugin) attach(s *State, a *Attached) (*Result, error) {
	d, fw, err := p.kernel()
	if err != nil {
		return nil, err
	}
	nr := s.Networks[p.n.Name]
	bspec := bridgeSpec(p.n, nr)
	if idle, ok := s.Idle[p.n.Bridge]; ok {
		// The bridge's last network (this one with another
		// configuration, or another one) has no attachment left: its
		// tag and gateways go.
		if idle.Network != p.n.Name {
			if err := d.ReleaseBridgeOf(p.n.Bridge, ownerNetwork+idle.Network); err != nil {
				return nil, err
			}
		}
		for _, gw := range []netip.Prefix{netip.PrefixFrom(idle.Rule.Gateway, idle.Rule.Subnet.Bits()), netip.PrefixFrom(idle.Rule.Gateway6, idle.Rule.Subnet6.Bits())} {
			if gw.IsValid() && gw != bspec.Gateway && gw != bspec.Gateway6 {
				bspec.StaleGateways = append(bspec.StaleGateways, gw)
			}
		}
	}
	if err := d.EnsureBridge(bspec, ownerNetwork+p.n.Name); err != nil {
		if errdefs.Is(err, errdefs.KindConflict) {
			return nil, errorf(CodeInvalidConfig, "make bridge %q: %v", p.n.Bridge, err)
		}
		return nil, fmt.Errorf("make bridge %q: %w", p.n.Bridge, err)
	}
	delete(s.Idle, p.n.Bridge)
	if p.n.IsGateway {
		// As the bridge plugin does for a gateway: the host routes
		// between the bridge and its other links.
		if err := d.EnableIPForwarding(); err != nil {
			return nil, err
		}
	}
	spec := p.endpointSpec(a)
	if err := d.Join(a.Netns, spec); err != nil {
		return nil, fmt.Errorf("attach %s to bridge %q: %w", a, p.n.Bridge, err)
	}
	if err := addRoutes(a.Netns, a.IfName, p.n, a.IPs); err != nil {
		return nil, err
	}
	if err := p.syncFirewall(fw, s); err != nil {
		return nil, err
	}
	return p.result(a)
}

// endpointSpec is the driver's view of attachment a: the default route of
// each family goes through its gateway when the configuration asks for
// one (isDefaultGateway, or a default route among the IPAM routes without
// a gateway of its own).
func (p *plugin) endpointSpec(a *Attached) driverapi.EndpointSpec {
	mac, _ := net.ParseMAC(a.MAC)
	spec := driverapi.EndpointSpec{
		Bridge: p.n.Bridge, HostIfName: a.HostIfName, IfName: a.IfName, MAC: mac, MTU: p.n.MTU,
		Owner: ownerEndpoint + Key(a.Network, a.ContainerID, a.IfName),
	}
	for _, ip := range a.IPs {
		gw := netip.Addr{}
		if ip.Gateway.IsValid() && p.defaultVia(ip) {
			gw = ip.Gateway
		}
		if ip.Address.Addr().Is4() {
			spec.Address, spec.Gateway = ip.Address, gw
		} else {
			spec.Address6, spec.Gateway6 = ip.Address, gw
		}
	}
	// A MAC made of the IPv4 address is the one neighbours have cached for
	// that address; any other (the runtime's, or a random one on an
	// IPv6-only network) is announced, as the daemon announces it.
	spec.Announce = !bytes.Equal(mac, driverapi.MACFromAddress(spec.Address.Addr()))
	return spec
}

// defaultVia reports whether the container's default route of ip's family
// goes through ip's gateway.
func (p *plugin) defaultVia(ip AttachedIP) bool {
	for _, r := range resultRoutes(p.n, []AttachedIP{ip}) {
		if r.Dst.Bits() == 0 && r.Dst.Addr().Is4() == ip.Address.Addr().Is4() && (!r.GW.IsValid() || r.GW == ip.Gateway) {
			return true
		}
	}
	return false
}

// bridgeSpec is the bridge of n: with isGateway, the gateway of each
// family is its address; without, it has none.
func bridgeSpec(n *Network, nr NetworkRule) driverapi.BridgeSpec {
	spec := driverapi.BridgeSpec{Name: n.Bridge, MTU: n.MTU, Isolated: !n.IsGateway}
	if n.IsGateway {
		if nr.Gateway.IsValid() {
			spec.Gateway = netip.PrefixFrom(nr.Gateway, nr.Subnet.Bits())
		}
		if nr.Gateway6.IsValid() {
			spec.Gateway6 = netip.PrefixFrom(nr.Gateway6, nr.Subnet6.Bits())
		}
	}
	spec.Isolated6 = !n.IsGateway && nr.Subnet6.IsValid()
	return spec
}

// macFor is the container end's MAC: the runtime's, else made of the
// IPv4 address as the daemon makes it (a neighbour's cached entry stays
// right for the address's next holder), else random.
func macFor(asked net.HardwareAddr, ips []AttachedIP) net.HardwareAddr {
	if asked != nil {
		return asked
	}
	for _, ip := range ips {
		if mac := driverapi.MACFromAddress(ip.Address.Addr()); mac != nil {
			return mac
		}
	}
	return bridge.RandomMAC()
}

// portsFor gives each requested port the container's address of its
// family; one without a host address is published for each family the
// container has, as the portmap plugin does.
func portsFor(req []PortMapping, ips []AttachedIP) ([]PortMapping, error) {
	var out []PortMapping
	for _, m := range req {
		matched := false
		for _, ip := range ips {
			if m.HostIP.IsValid() && m.HostIP.Is4() != ip.Address.Addr().Is4() {
				continue
			}
			matched = true
			if !slices.Contains(out, m) {
				out = append(out, m)
			}
		}
		if !matched {
			return nil, errorf(CodeInvalidConfig, "portMappings: host address %s has no container address of its family", m.HostIP)
		}
	}
	return out, nil
}

// askedTwice finds a host port that two of ms (duplicates already
// dropped) would both take.
func askedTwice(ms []PortMapping) (PortMapping, bool) {
	for i, p := range ms {
		for _, q := range ms[i+1:] {
			if p.Protocol == q.Protocol && p.HostPort == q.HostPort && hostIPsOverlap(p.HostIP, q.HostIP) {
				return p, true
			}
		}
	}
	return PortMapping{}, false
}

// firewallNetworks is the firewall's view of the state: every network
// that has attachments, with their published ports.
func firewallNetworks(s *State) ([]firewall.Network, []firewall.PortMapping) {
	var nets []firewall.Network
	for _, name := range slices.Sorted(maps.Keys(s.Networks)) {
		nr := s.Networks[name]
		fn := firewall.Network{
			Bridge: nr.Bridge, Subnet: nr.Subnet, Gateway: nr.Gateway, Subnet6: nr.Subnet6, Gateway6: nr.Gateway6,
			ICC: true, Masquerade: nr.IPMasq, HostAccess: true,
			// Addresses are routable, as the bridge plugin leaves them
			// (a Kubernetes node routes to its pods): nat, unprotected.
			GatewayMode4: firewall.ModeNATUnprotected, GatewayMode6: firewall.ModeNATUnprotected,
			// Nor are two of them isolated from each other.
			PeersOpen: true,
		}
		if !nr.Gateway.IsValid() && !nr.Gateway6.IsValid() {
			// isGateway false: the bridge has no address, so nothing
			// is routed in or out; its containers talk among
			// themselves (an internal network in Docker's words).
			fn.Internal, fn.Masquerade = true, false
			fn.GatewayMode4, fn.GatewayMode6 = firewall.ModeIsolated, firewall.ModeIsolated
		}
		nets = append(nets, fn)
	}
	var ports []firewall.PortMapping
	for _, k := range slices.Sorted(maps.Keys(s.Attachments)) {
		a := s.Attachments[k]
		for _, m := range a.Ports {
			for _, ip := range a.IPs {
				addr := ip.Address.Addr()
				if m.HostIP.IsValid() && m.HostIP.Is4() != addr.Is4() {
					continue
				}
				ports = append(ports, firewall.PortMapping{
					Proto: protoOf(m.Protocol), HostIP: m.HostIP, HostPort: m.HostPort, Addr: addr, Port: m.ContainerPort,
				})
			}
		}
	}
	return nets, ports
}

// syncFirewall brings berth-cni's table from what the state held when
// this call loaded it (p.applied) to what it holds now. The table is
// changed as map elements and the networks' own chains, never rebuilt
// whole (a rebuild re-adds the base chains, and the kernel waits out an
// RCU grace period for their hooks: 20-30 ms a call here), unless it is
// missing (a reboot) or a batch fails on it.
func (p *plugin) syncFirewall(fw *nftables.Firewall, s *State) error {
	nets, ports := firewallNetworks(s)
	if err := p.applyFirewall(fw, nets, ports); err != nil {
		// Recorded with the state: the next call rebuilds the table.
		s.TableDirty, p.applied = true, nil
		return fmt.Errorf("nftables table inet %s: %w", TableNameFor(p.n.DataDir), err)
	}
	s.TableDirty, p.applied = false, &firewallView{nets, ports}
	return nil
}

func (p *plugin) applyFirewall(fw *nftables.Firewall, nets []firewall.Network, ports []firewall.PortMapping) error {
	ctx := context.Background()
	exists, err := fw.TableExists()
	if err != nil {
		return err
	}
	if !exists || p.applied == nil {
		return fw.Rebuild(ctx, nets, ports...)
	}
	fw.Assume(p.applied.nets, p.applied.ports)
	before := map[string]firewall.Network{}
	for _, n := range p.applied.nets {
		before[n.Bridge] = n
	}
	after := map[string]bool{}
	for _, n := range nets {
		after[n.Bridge] = true
		if old, ok := before[n.Bridge]; !ok || old != n {
			if err := fw.AddNetwork(ctx, n); err != nil {
				return err
			}
		}
	}
	var gone, fresh []firewall.PortMapping
	for _, m := range p.applied.ports {
		if !slices.Contains(ports, m) {
			gone = append(gone, m)
		}
	}
	for _, m := range ports {
		if !slices.Contains(p.applied.ports, m) {
			fresh = append(fresh, m)
		}
	}
	if err := fw.DelPorts(ctx, gone); err != nil {
		return err
	}
	if err := fw.AddPorts(ctx, fresh); err != nil {
		return err
	}
	for _, n := range p.applied.nets {
		if !after[n.Bridge] {
			if err := fw.DelNetwork(ctx, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// firewallView is what berth-cni's table holds, as firewallNetworks makes it.
type firewallView struct {
	nets  []firewall.Network
	ports []firewall.PortMapping
}

func protoOf(name string) firewall.Proto {
	if name == "udp" {
		return firewall.UDP
	}
	return firewall.TCP
}
