package network

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/berth-net/berth/internal/container"
)

// nameTable is the service-discovery index behind the embedded resolver:
// per network, the names of its ready endpoints and their addresses, and
// per sandbox, the networks it is on. The controller updates it whenever
// it records or forgets an endpoint (under its own lock); resolvers read it
// through Resolve and ResolveAddr under a read lock of their own, so a
// query never waits for kernel work and never takes the controller's lock.
type nameTable struct {
	mu        sync.RWMutex
	endpoints map[string]*indexedEndpoint // by endpoint ID
	networks  map[string]*netNames        // by network ID; user-defined bridge networks only
	sandboxes map[string][]*indexedEndpoint
}

// indexedEndpoint is what the table keeps of one endpoint: copies, never
// the controller's record, which changes under the controller's lock.
type indexedEndpoint struct {
	id, networkID, sandboxID string
	// The keys of libnetwork's Endpoint.Less, which orders a sandbox's
	// endpoints: its network's name as created, the endpoint's
	// gw-priority, and how many gateways it has (IPv4, IPv6).
	netName           string
	priority, gwCount int
	names             []string // lower case, first is the container's name
	// links maps the endpoint's link aliases to the names they stand for
	// (lower case): answered for this endpoint's sandbox only.
	links map[string]string
	// addrs are the endpoint's addresses: IPv4, then IPv6 on a network
	// with IPv6 (a name's A and AAAA answers).
	addrs        []netip.Addr
	discoverable bool // on a network with name resolution
	internal     bool
}

// netNames holds the names of one network.
type netNames struct {
	name    string // the network's name, lower case, for "container.network" queries
	display string // the network's name as created, for PTR answers
	byName  map[string][]netip.Addr
	byAddr  map[netip.Addr]string // PTR: the first name of the endpoint holding the address
}

func newNameTable() *nameTable {
	return &nameTable{
		endpoints: map[string]*indexedEndpoint{},
		networks:  map[string]*netNames{},
		sandboxes: map[string][]*indexedEndpoint{},
	}
}

// Discoverable reports whether containers on n find each other by name:
// user-defined bridge networks only, as in Docker (not the default
// bridge). A sandbox with an endpoint on one gets a DNS resolver.
func (n *Network) Discoverable() bool {
	return n != nil && n.Driver == DriverBridge && !n.Predefined && (n.Bridge == nil || !n.Bridge.DefaultBridge)
}

// dnsNames are the names ep answers to, as Docker's DNSNames: the
// container's name, its aliases, its short ID and its hostname, lower
// case, without repeats. The first is the name reverse lookups give.
func dnsNames(ep *Endpoint) []string {
	var out []string
	add := func(s string) {
		s = strings.ToLower(strings.TrimSuffix(s, "."))
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	add(strings.TrimPrefix(ep.Name, "/"))
	for _, a := range ep.Aliases {
		add(a)
	}
	if len(ep.ContainerID) >= 12 {
		add(ep.ContainerID[:12])
	}
	add(ep.Hostname)
	return out
}

// update indexes ep when it is ready and drops it otherwise (creating,
// deleting). n is ep's network; nil drops it too.
func (t *nameTable) update(ep *Endpoint, n *Network) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.removeLocked(ep.ID)
	if ep.State != EndpointReady || n == nil {
		return
	}
	ie := &indexedEndpoint{
		id: ep.ID, networkID: ep.NetworkID, sandboxID: ep.SandboxID, netName: n.Name, priority: ep.GwPriority,
		names: dnsNames(ep), links: linkAliases(ep.Links), addrs: endpointAddrs(ep), discoverable: n.Discoverable(), internal: n.Internal,
	}
	for _, gw := range []netip.Addr{ep.Gateway, ep.Gateway6} {
		if gw.IsValid() {
			ie.gwCount++
		}
	}
	t.endpoints[ep.ID] = ie
	sbEPs := append(t.sandboxes[ie.sandboxID], ie)
	// Which network answers first is libnetwork's order of the sandbox's
	// endpoints, the order that also picks the default gateway.
	slices.SortFunc(sbEPs, compareEndpoints)
	t.sandboxes[ie.sandboxID] = sbEPs
	if !ie.discoverable || len(ie.addrs) == 0 {
		return
	}
	nn := t.networks[ie.networkID]
	if nn == nil {
		nn = &netNames{byName: map[string][]netip.Addr{}, byAddr: map[netip.Addr]string{}}
		t.networks[ie.networkID] = nn
	}
	nn.name, nn.display = strings.ToLower(n.Name), n.Name
	for _, name := range ie.names {
		nn.byName[name] = append(nn.byName[name], ie.addrs...)
	}
	if len(ie.names) > 0 {
		for _, a := range ie.addrs {
			nn.byAddr[a] = ie.names[0]
		}
	}
}

// compareEndpoints is libnetwork's Endpoint.Less (sandbox.go), the order
// in which Sandbox.ResolveName walks a sandbox's endpoints: the higher
// gw-priority first, then not internal, then more gateways (both
// families, one, none), then the network's name.
func compareEndpoints(a, b *indexedEndpoint) int {
	if a.priority != b.priority {
		return cmp.Compare(b.priority, a.priority)
	}
	if a.internal != b.internal {
		if b.internal {
			return -1
		}
		return 1
	}
	if a.gwCount != b.gwCount {
		return cmp.Compare(b.gwCount, a.gwCount)
	}
	return strings.Compare(a.netName, b.netName)
}

// endpointAddrs are ep's addresses, IPv4 first.
func endpointAddrs(ep *Endpoint) []netip.Addr {
	var out []netip.Addr
	for _, p := range []netip.Prefix{ep.Address, ep.Address6} {
		if p.IsValid() {
			out = append(out, p.Addr())
		}
	}
	return out
}

// remove drops the endpoint of that ID; an unknown one is not an error.
func (t *nameTable) remove(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.removeLocked(id)
}

func (t *nameTable) removeLocked(id string) {
	ie, ok := t.endpoints[id]
	if !ok {
		return
	}
	delete(t.endpoints, id)
	sbEPs := slices.DeleteFunc(t.sandboxes[ie.sandboxID], func(o *indexedEndpoint) bool { return o == ie })
	if len(sbEPs) == 0 {
		delete(t.sandboxes, ie.sandboxID)
	} else {
		t.sandboxes[ie.sandboxID] = sbEPs
	}
	nn := t.networks[ie.networkID]
	if nn == nil {
		return
	}
	for _, name := range ie.names {
		// A fresh slice, not an in-place delete: a reader may hold the old one.
		left := slices.DeleteFunc(slices.Clone(nn.byName[name]), func(a netip.Addr) bool { return slices.Contains(ie.addrs, a) })
		if len(left) == 0 {
			delete(nn.byName, name)
		} else {
			nn.byName[name] = left
		}
	}
	for _, a := range ie.addrs {
		if nn.byAddr[a] == firstOf(ie.names) {
			delete(nn.byAddr, a)
		}
	}
	if len(nn.byName) == 0 && len(nn.byAddr) == 0 {
		delete(t.networks, ie.networkID)
	}
}

// linkAliases maps each link's alias to its target, lower case; links are
// checked when they are asked for (container.ParseLink), and one that does not
// parse is left out.
func linkAliases(links []string) map[string]string {
	if len(links) == 0 {
		return nil
	}
	m := make(map[string]string, len(links))
	for _, l := range links {
		name, alias, err := container.ParseLink(l)
		if err != nil {
			continue
		}
		m[strings.ToLower(alias)] = strings.ToLower(name) // the last wins, as libnetwork's CreateOptionAlias
	}
	return m
}

func firstOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// resolve answers name for a sandbox: on each network the sandbox is on,
// in libnetwork's order (compareEndpoints), the first that knows the name
// wins. "name.network"
// limits the search to that network, as Docker allows.
func (t *nameTable) resolve(sandboxID, name string) ([]netip.Addr, bool) {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if name == "" {
		return nil, false
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	eps := t.sandboxes[sandboxID]
	if addrs, ok := t.lookupLocked(eps, name, ""); ok {
		return addrs, true
	}
	// Try every split "a.b.c" → {a.b in network c}, {a in network b.c}.
	for i := strings.LastIndexByte(name, '.'); i > 0; i = strings.LastIndexByte(name[:i], '.') {
		if addrs, ok := t.lookupLocked(eps, name[:i], name[i+1:]); ok {
			return addrs, true
		}
	}
	return nil, false
}

// lookupLocked looks name up on the sandbox's discoverable networks (only
// on the one called network, when it is not ""), and returns a copy. As
// libnetwork's Sandbox.ResolveName, the sandbox's own link aliases come
// first, each looked up on its endpoint's network; then the plain names,
// where an endpoint holding a link alias of that name does not answer
// for it.
func (t *nameTable) lookupLocked(eps []*indexedEndpoint, name, network string) ([]netip.Addr, bool) {
	for _, aliases := range []bool{true, false} {
		for _, ie := range eps {
			if !ie.discoverable {
				continue
			}
			nn := t.networks[ie.networkID]
			if nn == nil || (network != "" && nn.name != network) {
				continue
			}
			target, linked := ie.links[name]
			switch {
			case aliases && !linked, !aliases && linked:
				continue
			case !aliases:
				target = name
			}
			if addrs := nn.byName[target]; len(addrs) > 0 {
				return slices.Clone(addrs), true
			}
		}
	}
	return nil, false
}

// resolveAddr is the PTR side: "name.network" for an address on one of
// the sandbox's discoverable networks.
func (t *nameTable) resolveAddr(sandboxID string, a netip.Addr) (string, bool) {
	a = a.Unmap()
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, ie := range t.sandboxes[sandboxID] {
		if !ie.discoverable {
			continue
		}
		if nn := t.networks[ie.networkID]; nn != nil {
			if name, ok := nn.byAddr[a]; ok {
				return name + "." + nn.display, true
			}
		}
	}
	return "", false
}

// sandboxInfo reports whether the sandbox is on a discoverable network and
// whether any of its networks leads out (is not internal).
func (t *nameTable) sandboxInfo(sandboxID string) (discoverable, external bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, ie := range t.sandboxes[sandboxID] {
		discoverable = discoverable || ie.discoverable
		external = external || !ie.internal
	}
	return discoverable, external
}

// Resolve returns the addresses name has for the containers sandboxID
// shares a user-defined network with: a container's name, its 12-character
// short ID or an alias, case-insensitive, optionally followed by
// ".<network name>". Safe for concurrent use; changes show as soon as
// Join or Leave has recorded them.
func (c *Controller) Resolve(sandboxID, name string) ([]netip.Addr, bool) {
	return c.names.resolve(sandboxID, name)
}

// ResolveAddr returns "name.network" for an address on one of the
// sandbox's user-defined networks (reverse lookups).
func (c *Controller) ResolveAddr(sandboxID string, a netip.Addr) (string, bool) {
	return c.names.resolveAddr(sandboxID, a)
}

// NameResolution reports whether the sandbox is on at least one network
// where containers resolve each other's names (a user-defined bridge).
func (c *Controller) NameResolution(sandboxID string) bool {
	d, _ := c.names.sandboxInfo(sandboxID)
	return d
}

// ExternalAccess reports whether any network of the sandbox leads out
// (is not --internal); a resolver forwards queries upstream only then.
func (c *Controller) ExternalAccess(sandboxID string) bool {
	_, ext := c.names.sandboxInfo(sandboxID)
	return ext
}
