package firewall

import (
	"fmt"
	"net/netip"
	"strings"
)

// The model below is a deliberately small subset of nftables: only the
// statements berth's table uses. Each statement prints itself in nft syntax
// (String), and firewall/nftables translates the same values into netlink
// expressions, so the text and the netlink form always come from one source.

// Hook is the netfilter hook a base chain is attached to.
type Hook int

// The hooks berth uses.
const (
	HookPrerouting Hook = iota
	HookForward
	HookPostrouting
	HookOutput
	HookInput
)

func (h Hook) String() string {
	return [...]string{"prerouting", "forward", "postrouting", "output", "input"}[h]
}

// ChainType is the type of a base chain.
type ChainType int

// The chain types berth uses.
const (
	TypeFilter ChainType = iota
	TypeNAT
)

func (t ChainType) String() string { return [...]string{"filter", "nat"}[t] }

// Priority is a base chain priority by the name nft prints for it.
type Priority struct {
	Name  string
	Value int32
}

// The standard priorities berth's base chains use (nft(8), "PRIORITY").
var (
	PriorityRaw    = Priority{Name: "raw", Value: -300}
	PriorityFilter = Priority{Name: "filter", Value: 0}
	PrioritySrcNAT = Priority{Name: "srcnat", Value: 100}
	PriorityDstNAT = Priority{Name: "dstnat", Value: -100}
)

// BaseChain makes a chain a base chain: hooked into the packet path, policy accept.
type BaseChain struct {
	Type     ChainType
	Hook     Hook
	Priority Priority
}

// Chain is a chain and its rules, in order.
type Chain struct {
	Name  string
	Base  *BaseChain // nil for a regular chain, reached only by jumps
	Rules []Rule
}

// Rule is a list of statements and an optional comment.
type Rule struct {
	Stmts   []Stmt
	Comment string
}

func (r Rule) String() string {
	parts := make([]string, 0, len(r.Stmts)+1)
	for _, s := range r.Stmts {
		if str := s.String(); str != "" { // an implied dependency prints nothing
			parts = append(parts, str)
		}
	}
	if r.Comment != "" {
		parts = append(parts, fmt.Sprintf("comment %q", r.Comment))
	}
	return strings.Join(parts, " ")
}

// KeyType is the key type of a map.
type KeyType int

// The key types of berth's verdict maps.
const (
	KeyIfname         KeyType = iota // 16 bytes, zero padded; interface name
	KeyIPv4Prefix                    // ipv4_addr with flags interval; one element per subnet
	KeyProtoPort                     // inet_proto . inet_service → ipv4_addr . inet_service (ports.go)
	KeyAddrProtoPort                 // ipv4_addr . inet_proto . inet_service → ipv4_addr . inet_service
	KeyIPv6Prefix                    // ipv6_addr with flags interval; one element per IPv6 subnet
	KeyProtoPort6                    // inet_proto . inet_service → ipv6_addr . inet_service (ports6.go)
	KeyAddrProtoPort6                // ipv6_addr . inet_proto . inet_service → ipv6_addr . inet_service
	KeyRoutedSet                     // a set of ipv4_addr . inet_proto . inet_service (routed.go)
	KeyRoutedSet6                    // a set of ipv6_addr . inet_proto . inet_service
)

// IsSet reports whether a map of this key type is a set: keys, no data.
func (k KeyType) IsSet() bool { return k == KeyRoutedSet || k == KeyRoutedSet6 }

// Map is a verdict map, or a port map (ports.go), and its elements.
type Map struct {
	Name     string
	Key      KeyType
	Elements []Element
}

// Element maps one key to a jump, or a published port to its container.
// Exactly one of Ifname, Prefix and Port is set, according to the map's key
// type; Jump is set with Ifname and Prefix.
type Element struct {
	Map    string
	Ifname string
	Prefix netip.Prefix
	Jump   string
	Port   PortMapping
}

// KeyString is the element's key in nft syntax.
func (e Element) KeyString() string {
	switch {
	case e.Port.HostPort != 0 || e.Port.Routed:
		return e.Port.keyString()
	case e.Prefix.IsValid():
		return e.Prefix.String()
	}
	return fmt.Sprintf("%q", e.Ifname)
}

// DataString is the element's data in nft syntax.
func (e Element) DataString() string {
	if e.Port.HostPort != 0 {
		return e.Port.dataString()
	}
	return "jump " + e.Jump
}

// Stmt is one statement of a rule. The set is closed: firewall/nftables knows
// how to translate each of the types below and nothing else.
type Stmt interface {
	fmt.Stringer
	isStmt()
}

// Dir says whether an interface match looks at the input or output interface.
type Dir int

// Interface directions.
const (
	In  Dir = iota // iifname
	Out            // oifname
)

func (d Dir) String() string { return [...]string{"iifname", "oifname"}[d] }

// IfnameMatch matches the input or output interface name: the whole
// name, or with Wildcard every name that begins with Name (nft's
// "eth*", iptables' "eth+").
type IfnameMatch struct {
	Dir      Dir
	Negate   bool
	Name     string
	Wildcard bool
}

func (m IfnameMatch) String() string {
	name := m.Name
	if m.Wildcard {
		name += "*"
	}
	return m.Dir.String() + neg(m.Negate) + fmt.Sprintf("%q", name)
}

// Matches reports whether an interface called name matches, Negate aside.
func (m IfnameMatch) Matches(name string) bool {
	if m.Wildcard {
		return strings.HasPrefix(name, m.Name)
	}
	return name == m.Name
}

// CtEstablishedRelated matches packets of known connections.
type CtEstablishedRelated struct{}

func (CtEstablishedRelated) String() string { return "ct state established,related" }

// AddrField is the header field an address match reads.
type AddrField int

// Address fields.
const (
	Saddr AddrField = iota
	Daddr
)

func (f AddrField) String() string { return [...]string{"saddr", "daddr"}[f] }

// AddrMatch matches the source or destination against a prefix. The
// prefix's family picks the header: "ip saddr" for IPv4, "ip6 saddr" for
// IPv6; a packet of the other family never matches, negated or not.
type AddrMatch struct {
	Field  AddrField
	Negate bool
	Prefix netip.Prefix
}

func (m AddrMatch) String() string {
	p := m.Prefix.String()
	if m.Prefix.IsSingleIP() {
		p = m.Prefix.Addr().String() // nft prints a full-length prefix as an address
	}
	fam := "ip "
	if m.Prefix.Addr().Is6() {
		fam = "ip6 "
	}
	return fam + m.Field.String() + neg(m.Negate) + p
}

// MarkMatch matches a packet whose firewall mark, masked, is Mark
// ("meta mark & MASK == MARK"; a Mask of all ones is the whole mark):
// a mark another firewall of the host set, as dockerd's
// --bridge-accept-fwmark accepts.
type MarkMatch struct {
	Mark, Mask uint32
}

func (m MarkMatch) String() string {
	if m.Mask == ^uint32(0) {
		return fmt.Sprintf("meta mark 0x%08x", m.Mark)
	}
	return fmt.Sprintf("meta mark & 0x%08x == 0x%08x", m.Mask, m.Mark)
}

// LookupKey is what a verdict-map lookup uses as the key.
type LookupKey int

// Lookup keys.
const (
	LookupIifname LookupKey = iota
	LookupOifname
	LookupDaddr  // IPv4 destination
	LookupDaddr6 // IPv6 destination
)

func (k LookupKey) String() string {
	return [...]string{"iifname", "oifname", "ip daddr", "ip6 daddr"}[k]
}

// VmapLookup jumps to the verdict the map holds for the packet's key; a
// packet whose key is not in the map continues with the next rule.
type VmapLookup struct {
	Key LookupKey
	Map string
}

func (v VmapLookup) String() string { return v.Key.String() + " vmap @" + v.Map }

// IfnameInMap matches a packet whose input or output interface is a key
// of the map ("iifname @host_in"): a lookup that gives no verdict.
type IfnameInMap struct {
	Dir Dir
	Map string
}

func (m IfnameInMap) String() string { return m.Dir.String() + " @" + m.Map }

// Counter counts packets and bytes; berth puts one on every drop so that
// "why is my traffic dropped" can be answered with nft list.
type Counter struct{}

func (Counter) String() string { return "counter" }

// Masquerade source-NATs to the address of the output interface.
type Masquerade struct{}

func (Masquerade) String() string { return "masquerade" }

// SNAT source-NATs to one address (IPv4 or IPv6).
type SNAT struct{ Addr netip.Addr }

func (s SNAT) String() string {
	if s.Addr.Is4() {
		return "snat ip to " + s.Addr.String()
	}
	return "snat ip6 to " + s.Addr.String()
}

// VerdictKind is a terminal decision or a jump.
type VerdictKind int

// Verdicts.
const (
	Accept VerdictKind = iota
	Drop
	Jump
	Return
)

// Verdict ends a rule with a decision; Chain is the target of a Jump.
type Verdict struct {
	Kind  VerdictKind
	Chain string
}

func (v Verdict) String() string {
	switch v.Kind {
	case Accept:
		return "accept"
	case Drop:
		return "drop"
	case Jump:
		return "jump " + v.Chain
	default:
		return "return"
	}
}

func (IfnameMatch) isStmt()          {}
func (CtEstablishedRelated) isStmt() {}
func (MarkMatch) isStmt()            {}
func (AddrMatch) isStmt()            {}
func (VmapLookup) isStmt()           {}
func (IfnameInMap) isStmt()          {}
func (Counter) isStmt()              {}
func (Masquerade) isStmt()           {}
func (SNAT) isStmt()                 {}
func (Verdict) isStmt()              {}

func neg(n bool) string {
	if n {
		return " != "
	}
	return " "
}
