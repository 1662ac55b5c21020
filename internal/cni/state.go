package cni

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
)

// State is everything berth-cni remembers, in one file of its data
// directory (read and written under its lock): the attachments it made,
// the networks they are on (for the firewall table, rebuilt whole from
// here), and where each range set's allocation last stopped.
type State struct {
	Attachments map[string]*Attached   `json:"attachments"`
	Networks    map[string]NetworkRule `json:"networks"`
	// TableDirty says the last change of the table failed: it may not
	// hold what this state says, so the next call rebuilds it.
	TableDirty bool `json:"tableDirty,omitempty"`
	// Last is the address each range set handed out last, by
	// "network/set": the next ADD starts after it, as host-local does, so
	// an address is not handed to a new container right after an old one
	// let it go.
	Last map[string]netip.Addr `json:"last"`
	// BootID is the kernel's boot_id when the state was last read: the
	// attachments of another boot are gone with it (namespaces, veths,
	// the table), and their records are dropped (afterBoot).
	BootID string `json:"bootID,omitempty"`
	// Idle is, by bridge, the network whose last attachment left it: the
	// bridge keeps that network's gateway addresses and owner tag, which
	// the next network or configuration to use it takes over (takeOver).
	Idle map[string]IdleBridge `json:"idle,omitempty"`
}

// IdleBridge is a bridge no attachment uses, and what it was made for.
type IdleBridge struct {
	Network string      `json:"network"`
	Rule    NetworkRule `json:"rule"`
}

// afterBoot forgets what a state recorded before the machine booted
// again: no runtime calls DEL for containers a reboot ended, and their
// records held addresses and host ports, and refused the same container
// ID an ADD ("already has interface"), until a GC (host-local keeps its
// files across a reboot the same way: containernetworking/plugins#252).
// The rotation of addresses (Last) is kept. It reports whether it dropped
// anything.
func (s *State) afterBoot(bootID string) bool {
	if bootID == "" || s.BootID == bootID {
		return false
	}
	old := s.BootID
	s.BootID = bootID
	if old == "" {
		return false // a new state, or one from before BootID: not known
	}
	dropped := len(s.Attachments) > 0
	s.Attachments, s.Networks, s.Idle = map[string]*Attached{}, map[string]NetworkRule{}, nil
	s.TableDirty = true // gone with the boot: made whole again
	return dropped
}

// Attached is one ADD that succeeded (or is under way: Done false).
type Attached struct {
	Network     string        `json:"network"`
	ContainerID string        `json:"containerID"`
	IfName      string        `json:"ifname"`
	Netns       string        `json:"netns"`
	HostIfName  string        `json:"hostIfName"`
	MAC         string        `json:"mac"`
	IPs         []AttachedIP  `json:"ips"`
	Ports       []PortMapping `json:"ports,omitempty"`
	Done        bool          `json:"done"`
}

// AttachedIP is one address of an attachment, with its range set.
type AttachedIP struct {
	Address netip.Prefix `json:"address"`
	Gateway netip.Addr   `json:"gateway,omitzero"`
	Set     int          `json:"set"`
}

// NetworkRule is what the firewall table needs of one network.
type NetworkRule struct {
	Bridge   string       `json:"bridge"`
	Subnet   netip.Prefix `json:"subnet,omitzero"`
	Gateway  netip.Addr   `json:"gateway,omitzero"`
	Subnet6  netip.Prefix `json:"subnet6,omitzero"`
	Gateway6 netip.Addr   `json:"gateway6,omitzero"`
	IPMasq   bool         `json:"ipMasq"`
}

// NewState is an empty state.
func NewState() *State {
	return &State{Attachments: map[string]*Attached{}, Networks: map[string]NetworkRule{}, Last: map[string]netip.Addr{}}
}

// Key names an attachment: the specification's (network, container,
// interface) triple.
func Key(network, containerID, ifName string) string {
	return network + "/" + containerID + "/" + ifName
}

func lastKey(network string, set int) string { return network + "/" + strconv.Itoa(set) }

// inUse is every address of network's attachments.
func (s *State) inUse(network string) map[netip.Addr]string {
	used := map[netip.Addr]string{}
	for k, a := range s.Attachments {
		if a.Network != network {
			continue
		}
		for _, ip := range a.IPs {
			used[ip.Address.Addr()] = k
		}
	}
	return used
}

// Allocate gives the attachment key one address from each of n's range
// sets: the one requested where the request names an address of that
// set, else the next free one after the set's last (host-local's
// round robin). It changes nothing when it fails.
func (s *State) Allocate(n *Network, key string, requested []netip.Addr) ([]AttachedIP, error) {
	used := s.inUse(n.Name)
	var out []AttachedIP
	wanted := slices.Clone(requested)
	for si, set := range n.RangeSets {
		ip, err := s.allocateFrom(n.Name, si, set, used, &wanted)
		if err != nil {
			return nil, err
		}
		out = append(out, ip)
	}
	if len(wanted) > 0 {
		return nil, errorf(CodeInvalidConfig, "requested IP address %s is not in any range of network %q", wanted[0], n.Name)
	}
	for _, ip := range out {
		s.Last[lastKey(n.Name, ip.Set)] = ip.Address.Addr()
	}
	return out, nil
}

func (s *State) allocateFrom(network string, si int, set []Range, used map[netip.Addr]string, wanted *[]netip.Addr) (AttachedIP, error) {
	for i, a := range *wanted {
		// The set's subnet holds it: one of its ranges must (host-local's
		// RangeSet.RangeFor tries each), not merely the first.
		if !slices.ContainsFunc(set, func(r Range) bool { return r.Subnet.Contains(a) }) {
			continue
		}
		*wanted = slices.Delete(*wanted, i, i+1)
		k := slices.IndexFunc(set, func(r Range) bool {
			return r.Subnet.Contains(a) && !a.Less(r.Start) && !r.End.Less(a) && a != r.Gateway
		})
		if k < 0 {
			return AttachedIP{}, errorf(CodeInvalidConfig, "requested IP address %s is not available in range set %s", a, setString(set))
		}
		if owner, taken := used[a]; taken {
			return AttachedIP{}, errorf(CodeInvalidConfig, "requested IP address %s is already allocated (to %s)", a, owner)
		}
		r := set[k]
		return AttachedIP{Address: netip.PrefixFrom(a, r.Subnet.Bits()), Gateway: r.Gateway, Set: si}, nil
	}
	// Start after the last address handed out, in its range; the first
	// range when there is none (or it is no longer in the set).
	start, ri := set[0].Start, 0
	if last, ok := s.Last[lastKey(network, si)]; ok {
		for i, r := range set {
			if !last.Less(r.Start) && !r.End.Less(last) {
				start, ri = last.Next(), i
				if r.End.Less(start) || !start.IsValid() {
					ri = (i + 1) % len(set)
					start = set[ri].Start
				}
				break
			}
		}
	}
	// Every range once, from (ri, start), wrapping around to the part of
	// range ri before start.
	type segment struct {
		r        Range
		from, to netip.Addr
	}
	segs := []segment{{set[ri], start, set[ri].End}}
	for j := 1; j < len(set); j++ {
		r := set[(ri+j)%len(set)]
		segs = append(segs, segment{r, r.Start, r.End})
	}
	if start != set[ri].Start {
		segs = append(segs, segment{set[ri], set[ri].Start, start.Prev()})
	}
	for _, g := range segs {
		if a, ok := firstFree(g.r, g.from, g.to, used); ok {
			return AttachedIP{Address: netip.PrefixFrom(a, g.r.Subnet.Bits()), Gateway: g.r.Gateway, Set: si}, nil
		}
	}
	return AttachedIP{}, errorf(CodeAddressesExhausted, "no IP addresses available in range set: %s", setString(set))
}

// firstFree is the first address of r in [from, to] that is neither the
// gateway nor used.
func firstFree(r Range, from, to netip.Addr, used map[netip.Addr]string) (netip.Addr, bool) {
	for a := from; a.IsValid() && !to.Less(a); a = a.Next() {
		if a == r.Gateway {
			continue
		}
		if _, taken := used[a]; !taken {
			return a, true
		}
	}
	return netip.Addr{}, false
}

func setString(set []Range) string {
	s := ""
	for i, r := range set {
		if i > 0 {
			s += ","
		}
		s += r.String()
	}
	return s
}

// PortConflict returns the attachment that already publishes one of ports
// (on the same protocol and host port, on an overlapping host address of
// the same family), or "" if none does. self is skipped (a retried ADD).
func (s *State) PortConflict(self string, ports []PortMapping) (string, PortMapping) {
	for k, a := range s.Attachments {
		if k == self {
			continue
		}
		for _, p := range ports {
			for _, q := range a.Ports {
				if p.Protocol == q.Protocol && p.HostPort == q.HostPort && hostIPsOverlap(p.HostIP, q.HostIP) {
					return k, p
				}
			}
		}
	}
	return "", PortMapping{}
}

// hostIPsOverlap: an unspecified host address takes the port on every
// address of both families, as a runtime's portmap does.
func hostIPsOverlap(a, b netip.Addr) bool {
	return !a.IsValid() || !b.IsValid() || a == b
}

// NetworkRuleOf is the firewall's view of n, from its range sets.
func NetworkRuleOf(n *Network) NetworkRule {
	nr := NetworkRule{Bridge: n.Bridge, IPMasq: n.IPMasq}
	for _, set := range n.RangeSets {
		r := set[0]
		gw := r.Gateway
		if !n.IsGateway {
			gw = netip.Addr{}
		}
		if r.Subnet.Addr().Is4() {
			nr.Subnet, nr.Gateway = r.Subnet, gw
		} else {
			nr.Subnet6, nr.Gateway6 = r.Subnet, gw
		}
	}
	return nr
}

// networksInUse drops the networks no attachment is on.
func (s *State) networksInUse() {
	on := map[string]bool{}
	for _, a := range s.Attachments {
		on[a.Network] = true
	}
	for name, nr := range s.Networks {
		if !on[name] {
			delete(s.Networks, name)
			if s.Idle == nil {
				s.Idle = map[string]IdleBridge{}
			}
			s.Idle[nr.Bridge] = IdleBridge{Network: name, Rule: nr}
		}
	}
}

// dropGoneIdle forgets the idle bridges that are gone (an administrator
// deleted one, as the overlap refusal advises) or were never this
// network's (an ADD that failed before the bridge was made recorded the
// name: a veth, another manager's bridge): owned says whether the link
// bridge carries network's tag. It reports whether it dropped any.
func (s *State) dropGoneIdle(owned func(bridge, network string) bool) bool {
	dropped := false
	for br, idle := range s.Idle {
		if !owned(br, idle.Network) {
			delete(s.Idle, br)
			dropped = true
		}
	}
	return dropped
}

// overlapping says which network on another bridge has a subnet that
// overlaps one of nr's: one with attachments (the firewall would refuse
// the pair, but only after the bridge was made), or an idle bridge's last
// one, whose gateway address and route the bridge keeps (the host would
// route the new network's containers through it).
func (s *State) overlapping(name string, nr NetworkRule) string {
	over := func(o NetworkRule) bool {
		return o.Bridge != nr.Bridge && (o.Subnet.IsValid() && nr.Subnet.IsValid() && o.Subnet.Overlaps(nr.Subnet) ||
			o.Subnet6.IsValid() && nr.Subnet6.IsValid() && o.Subnet6.Overlaps(nr.Subnet6))
	}
	for other, o := range s.Networks {
		if other != name && over(o) {
			return fmt.Sprintf("network %q's, which has attachments on bridge %q", other, o.Bridge)
		}
	}
	for br, idle := range s.Idle {
		if over(idle.Rule) {
			return fmt.Sprintf("network %q's, whose bridge %q has no attachment left but keeps its address (give this network bridge %q, or delete it: ip link del %s)", idle.Network, br, br, br)
		}
	}
	return ""
}

func (a *Attached) String() string {
	return fmt.Sprintf("%s on %s (%s)", a.ContainerID, a.Network, a.IfName)
}

// attachedTo counts the attachments on network.
func (s *State) attachedTo(network string) int {
	n := 0
	for _, a := range s.Attachments {
		if a.Network == network {
			n++
		}
	}
	return n
}

// unfinished reports whether an attachment's ADD has not finished (cut
// off, or under way in a call that holds the lock).
func (s *State) unfinished() bool {
	for _, a := range s.Attachments {
		if !a.Done {
			return true
		}
	}
	return false
}
