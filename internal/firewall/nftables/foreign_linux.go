package nftables

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	nftlib "github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// This file reads other tables, never to learn berth's own state and
// never to change them: it finds a host firewall that drops what berth
// forwards. In nftables an accept is final only within its own base
// chain, and a drop in any chain is final, so a forward chain of another
// table with a drop policy (iptables' `-P FORWARD DROP`, which Docker
// sets, and ufw's default) drops the containers' traffic whatever
// berth's table accepts, and berth must not write into that table.
// Saying so is what berth can do.

// ForwardBridge is one of berth's bridges, with the families its network
// has: an ip table's chain matters to IPv4 ones, an ip6 table's to IPv6
// ones, an inet table's to all.
type ForwardBridge struct {
	Name       string
	IPv4, IPv6 bool
	// Routed4 and Routed6: the network's gateway mode in that family is
	// routed, so its ports are reached without DNAT, and a rule accepting
	// by "ct status dnat" does not let them in.
	Routed4, Routed6 bool
	// Internal: the network is internal, so none of its traffic is
	// forwarded out or in; only its traffic between containers can meet a
	// forward chain (Bridged4/Bridged6).
	Internal bool
	// Bridged4 and Bridged6: br_netfilter passes the traffic between the
	// bridge's own ports through the IPv4 (IPv6) hooks
	// (net.bridge.bridge-nf-call-iptables, -ip6tables), so a forward
	// chain sees the containers' traffic to each other too: the leg
	// "between", both interfaces the bridge.
	Bridged4, Bridged6 bool
}

// ForwardBlocker is another table's base chain on the forward hook that
// drops what its rules do not accept, and the legs of berth's traffic
// none of its rules, nor those of the chains they jump to, accepts.
type ForwardBlocker struct {
	Family, Table, Chain string
	// Why: "policy drop", or the unconditional drop or reject its last
	// rule is.
	Why string
	// Dropped are the bridges whose traffic it drops: "berth0 (out, in)"
	// (out: from the containers, to the outside; in: to them, to their
	// published ports; between: from one of them to another, where
	// br_netfilter passes it through the forward hook), in bridges' order.
	Dropped []string
	// Bridges are their names.
	Bridges []string
	// Manager is "ufw" when ufw's chains are in the table (its rules are
	// better changed through it: they last across reboots).
	Manager string
}

func (b ForwardBlocker) String() string {
	return fmt.Sprintf("table %s %s, chain %s (%s)", b.Family, b.Table, b.Chain, b.Why)
}

// leg is one bridge's traffic in one direction through the forward hook:
// out of the bridge (its input interface), or into it (its output one),
// or, within, between two of its ports (both interfaces the bridge).
type leg struct {
	bridge string
	out    bool
	routed bool // the traffic in is routed, not DNATed (ForwardBridge.Routed4/6)
	within bool
}

// name is the leg's direction as ForwardBlocker.Dropped says it.
func (l leg) name() string {
	switch {
	case l.within:
		return "between"
	case l.out:
		return "out"
	}
	return "in"
}

// ForwardBlockers lists the forward chains of other tables, in the
// network namespace at netnsPath ("" is the caller's), that would drop
// traffic through bridges. berth's own tables (inet berth, and
// berth-cni's berth-cni…) are skipped. A leg of a
// bridge's traffic is accepted when a rule of the chain, or of a chain
// it jumps to for that traffic, matches the bridge as that leg's
// interface (input for the traffic out of it, output for the traffic
// into it; by name, by a prefix such as iptables' "br+", or in a set or
// verdict map) and accepts, or jumps or goes to a chain of its own for
// it; a match of all names but some (iifname != "eth0") names it too.
// Other matches are taken as met; a rule that accepts without naming the
// bridge's interface (by subnet, by conntrack state) does not count. Rules of
// iptables-legacy are not in nftables and are not seen.
func ForwardBlockers(netnsPath string, bridges []ForwardBridge) ([]ForwardBlocker, error) {
	conn, done, all, chains, err := otherBaseChains(netnsPath, func(ch *nftlib.Chain) bool { return *ch.Hooknum == *nftlib.ChainHookForward })
	if err != nil {
		return nil, err
	}
	defer done()
	var out []ForwardBlocker
	for _, ch := range chains {
		family := familyName(ch.Table.Family)
		rules, err := conn.GetRules(ch.Table, ch)
		if err != nil {
			return nil, fmt.Errorf("list the rules of table %s %s chain %s: %w", family, ch.Table.Name, ch.Name, err)
		}
		why := ""
		if ch.Policy != nil && *ch.Policy == nftlib.ChainPolicyDrop {
			why = "policy drop"
		} else if len(rules) > 0 {
			why = unconditionalDrop(rules[len(rules)-1])
			if why == "" {
				why = finalJumpToDrop(conn, ch.Table, rules[len(rules)-1])
			}
		}
		if why == "" {
			continue
		}
		a := &chainReader{tableReader: newTableReader(conn, ch.Table), policyAccept: ch.Policy == nil || *ch.Policy == nftlib.ChainPolicyAccept}
		a.rules[ch.Name] = rules
		for _, br := range bridges {
			a.bridges = append(a.bridges, br.Name)
		}
		b := ForwardBlocker{Family: family, Table: ch.Table.Name, Chain: ch.Name, Why: why}
		if slices.ContainsFunc(all, func(c *nftlib.Chain) bool {
			return c.Table.Name == ch.Table.Name && c.Table.Family == ch.Table.Family && c.Name == "ufw-user-forward"
		}) {
			b.Manager = "ufw"
		}
		for _, br := range bridges {
			if family == "ip" && !br.IPv4 || family == "ip6" && !br.IPv6 {
				continue
			}
			var dirs []string
			for _, l := range legsOf(br, family) {
				if a.verdict(ch.Name, l, map[string]bool{}, true) != accepted {
					dirs = append(dirs, l.name())
				}
			}
			if dirs != nil {
				b.Dropped = append(b.Dropped, br.Name+" ("+strings.Join(dirs, ", ")+")")
				b.Bridges = append(b.Bridges, br.Name)
			}
		}
		if b.Dropped != nil {
			out = append(out, b)
		}
	}
	return out, nil
}

// legsOf are br's legs that a forward chain of family sees: out and in
// unless the network is internal, and between its ports where
// br_netfilter passes that traffic to the family's hooks.
func legsOf(br ForwardBridge, family string) []leg {
	var legs []leg
	if !br.Internal {
		routed := family == "ip" && br.Routed4 || family == "ip6" && br.Routed6 || family == "inet" && (br.Routed4 || br.Routed6)
		legs = append(legs, leg{bridge: br.Name, out: true, routed: routed}, leg{bridge: br.Name, routed: routed})
	}
	if family != "ip6" && br.IPv4 && br.Bridged4 || family != "ip" && br.IPv6 && br.Bridged6 {
		legs = append(legs, leg{bridge: br.Name, within: true})
	}
	return legs
}

// otherBaseChains opens nftables in the namespace at netnsPath and lists
// the base chains of the tables other than berth's (inet berth, berth-
// cni's) in the families whose hooks routed packets pass that keep
// takes; all is every chain, for a look at a table's others.
func otherBaseChains(netnsPath string, keep func(*nftlib.Chain) bool) (conn *nftlib.Conn, done func(), all, chains []*nftlib.Chain, err error) {
	conn, done, err = dial(netnsPath)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	all, err = conn.ListChains()
	if err != nil {
		done()
		return nil, nil, nil, nil, fmt.Errorf("list nftables chains: %w", err)
	}
	for _, ch := range all {
		if familyName(ch.Table.Family) == "" || ch.Table.Name == "berth" || strings.HasPrefix(ch.Table.Name, "berth-cni") || ch.Hooknum == nil || !keep(ch) {
			continue
		}
		chains = append(chains, ch)
	}
	return conn, done, all, chains, nil
}

// familyName is the nft word for the families whose forward hook routed
// packets pass; "" for the others (bridge, netdev, arp).
func familyName(f nftlib.TableFamily) string {
	switch f {
	case nftlib.TableFamilyIPv4:
		return "ip"
	case nftlib.TableFamilyIPv6:
		return "ip6"
	case nftlib.TableFamilyINet:
		return "inet"
	}
	return ""
}

// unconditionalDrop says what r drops every packet with ("its last rule
// drops everything", "… rejects everything"), or "" when r has a match
// or another verdict. Counters and logging are not matches; iptables-nft
// writes `-j REJECT` as the xtables target.
func unconditionalDrop(r *nftlib.Rule) string {
	verdict := ""
	for _, e := range r.Exprs {
		switch e := e.(type) {
		case *expr.Counter, *expr.Log:
		case *expr.Match:
			if e.Name != "comment" { // iptables' -m comment is an xtables match
				return ""
			}
		case *expr.Reject:
			verdict = "its last rule rejects everything"
		case *expr.Target:
			if e.Name != "REJECT" {
				return ""
			}
			verdict = "its last rule rejects everything"
		case *expr.Verdict:
			if e.Kind != expr.VerdictDrop {
				return ""
			}
			verdict = "its last rule drops everything"
		default:
			return ""
		}
	}
	return verdict
}

// finalJumpToDrop says what a chain's last rule r drops every packet
// with when r only jumps or goes to a chain whose own last rule drops
// or rejects everything, or does the same in turn (a log-and-drop chain:
// "its last rule jumps to deny, which drops everything"); "" otherwise.
func finalJumpToDrop(conn *nftlib.Conn, table *nftlib.Table, r *nftlib.Rule) string {
	for depth := 0; depth < 8; depth++ {
		target := ""
		for _, e := range r.Exprs {
			switch e := e.(type) {
			case *expr.Counter, *expr.Log:
			case *expr.Verdict:
				if e.Kind != expr.VerdictJump && e.Kind != expr.VerdictGoto {
					return ""
				}
				target = e.Chain
			default:
				return ""
			}
		}
		if target == "" {
			return ""
		}
		rules, err := conn.GetRules(table, &nftlib.Chain{Name: target, Table: table})
		if err != nil || len(rules) == 0 {
			return ""
		}
		r = rules[len(rules)-1]
		if why := unconditionalDrop(r); why != "" {
			return "its last rule jumps to " + target + ", which " + strings.TrimPrefix(why, "its last rule ")
		}
	}
	return ""
}

// tableReader reads one table's chains and sets from the kernel, once
// each: what ForwardBlockers and OtherForward's evaluation read.
type tableReader struct {
	conn  *nftlib.Conn
	table *nftlib.Table
	rules map[string][]*nftlib.Rule
	sets  map[string]*tableSet
	// err is the first read that failed.
	err error
}

// tableSet is a set's elements, whether they are intervals, and whether
// they could be read.
type tableSet struct {
	interval bool
	failed   bool
	elems    []nftlib.SetElement
}

func newTableReader(conn *nftlib.Conn, table *nftlib.Table) *tableReader {
	return &tableReader{conn: conn, table: table, rules: map[string][]*nftlib.Rule{}, sets: map[string]*tableSet{}}
}

func (t *tableReader) chain(name string) []*nftlib.Rule {
	if r, ok := t.rules[name]; ok {
		return r
	}
	r, err := t.conn.GetRules(t.table, &nftlib.Chain{Name: name, Table: t.table})
	if err != nil && t.err == nil {
		t.err = fmt.Errorf("chain %s: %w", name, err)
	}
	t.rules[name] = r
	return r
}

func (t *tableReader) set(name string) *tableSet {
	if s, ok := t.sets[name]; ok {
		return s
	}
	s := &tableSet{failed: true}
	if set, err := t.conn.GetSetByName(t.table, name); err == nil {
		s.interval = set.Interval
		var err error
		s.elems, err = t.conn.GetSetElements(set)
		s.failed = err != nil
	}
	t.sets[name] = s
	return s
}

// chainReader reads a table's chains for the legs of every bridge.
type chainReader struct {
	*tableReader
	bridges []string // all of berth's
	// policyAccept: the base chain's policy, where a goto that ends ends.
	policyAccept bool
}

// holdsOtherThanBridges reports whether set holds an interface name that
// is not one of berth's bridges (one that could be the way out).
func (a *chainReader) holdsOtherThanBridges(set string) bool {
	for _, el := range a.set(set).elems {
		if !matchesAny(el.Key, a.bridges) {
			return true
		}
	}
	return false
}

// regKind is what a rule has loaded into a register, for the matches
// that compare it.
type regKind uint8

const (
	regOther     regKind = iota // an address, a port, a mark: another match
	regOwnName                  // the name of l's own interface
	regOtherName                // the name of the interface on l's other side
	regCtState                  // the conntrack state
	regCtStatus                 // the conntrack status
)

// Conntrack bits the analysis reads: the state NEW (nft's ct state new)
// and the status DNAT (ct status dnat: a published port's traffic).
const (
	ctStateNew   = 1 << 3
	ctStatusDNAT = 1 << 5
)

// outcome is what a chain does with a leg's new connections.
type outcome int

const (
	through  outcome = iota // no rule decided: back to the caller
	accepted                // accepted
	dropped                 // dropped or rejected
)

// rule is what one rule's matches say about a leg, read so far.
type rule struct {
	applies     bool // no match rules the leg out
	named       bool // a match names the leg's bridge on its own side (or it is a published port's traffic, going in)
	negOwn      bool // a match on the own side that is met by "not X"
	otherSide   bool // a match on the other side's interface
	constrained bool // another match (address, port, mark…)
	ctState     bool // a conntrack state match that new connections fail
}

// counts says whether the rule's accept (or a jump whose chain accepts)
// lets the leg's new connections through: it names the bridge, or
// matches nothing at all.
func (r rule) counts() bool {
	return r.applies && !r.ctState && (r.named || !r.constrained && !r.otherSide && !r.negOwn)
}

// ends says whether the rule's drop, reject or return surely takes the
// leg: it matches nothing but the leg's own interface.
func (r rule) ends() bool { return r.applies && !r.constrained && !r.ctState && !r.otherSide }

// verdict says what chain does with l's new connections, reading its
// rules in order as the kernel does (stack holds the chains being read,
// base says chain is the base chain):
//   - an accept counts when the rule names l's bridge as l's own
//     interface (iifname "berth0" ip saddr … accept), or matches nothing
//     (an accept of everything); an accept for another interface, or for
//     all but some, does not;
//   - a jump or goto is followed: what the chain jumped to accepts counts
//     as the jumping rule's accept would; what it drops is dropped when
//     the jump matched nothing but l's own interface; a goto whose chain
//     does not decide ends the chain that made it (at the base chain: its
//     policy);
//   - a drop, reject or return that matches nothing but l's own interface
//     ends the search;
//   - a conntrack state match that NEW fails (ESTABLISHED,RELATED: the
//     replies) never counts; ct status dnat is the traffic to a published
//     port, l going in; a comment is no match.
//
// The other side's interface (the way out, for the traffic out of the
// bridge) is unknown, but it is neither lo nor one of berth's bridges.
func (a *chainReader) verdict(chain string, l leg, stack map[string]bool, base bool) outcome {
	stack[chain] = true
	defer delete(stack, chain)
	for _, r := range a.chain(chain) {
		st := rule{applies: true}
		regs := map[uint32]regKind{}
		masks := map[uint32]uint32{}
	exprs:
		for _, e := range r.Exprs {
			if !st.applies {
				break
			}
			switch e := e.(type) {
			case *expr.Meta:
				switch {
				case e.SourceRegister:
				case e.Key == expr.MetaKeyIIFNAME || e.Key == expr.MetaKeyOIFNAME:
					regs[e.Register] = regOtherName
					if l.within || (e.Key == expr.MetaKeyIIFNAME) == l.out {
						regs[e.Register] = regOwnName
					}
				default:
					regs[e.Register] = regOther
				}
			case *expr.Payload:
				if e.OperationType == expr.PayloadLoad {
					regs[e.DestRegister] = regOther
				}
			case *expr.Ct:
				if !e.SourceRegister {
					switch e.Key {
					case expr.CtKeySTATE:
						regs[e.Register] = regCtState
					case expr.CtKeySTATUS:
						regs[e.Register] = regCtStatus
					default:
						regs[e.Register] = regOther
					}
					masks[e.Register] = ^uint32(0)
				}
			case *expr.Bitwise:
				regs[e.DestRegister] = regs[e.SourceRegister]
				if len(e.Mask) >= 4 {
					masks[e.DestRegister] = binary.NativeEndian.Uint32(e.Mask)
				}
			case *expr.Immediate:
				regs[e.Register] = regOther
			case *expr.Cmp:
				a.cmp(&st, e, regs[e.Register], masks[e.Register], l)
			case *expr.Lookup:
				kind := regs[e.SourceRegister]
				switch {
				case kind == regOtherName:
					st.otherSide = true
					if !e.IsDestRegSet && !e.Invert && !a.holdsOtherThanBridges(e.SetName) {
						st.applies = false
					}
					continue
				case kind == regCtState && !e.IsDestRegSet:
					// ct state { established, related }: a new
					// connection meets it only if the set holds NEW (or
					// lacks it, inverted), as for the flag form (cmp).
					hasNew := false
					for _, el := range a.set(e.SetName).elems {
						if len(el.Key) >= 4 && binary.NativeEndian.Uint32(el.Key)&ctStateNew != 0 {
							hasNew = true
						}
					}
					if hasNew == e.Invert {
						st.ctState = true
					}
					continue
				case kind != regOwnName:
					st.constrained = true
					continue
				}
				in, code, target := false, int32(0), ""
				for _, el := range a.set(e.SetName).elems {
					if matchesAny(el.Key, []string{l.bridge}) {
						in = true
						code, target, _ = elementVerdict(el)
					}
				}
				if !e.IsDestRegSet {
					st.applies = in != e.Invert
					st.named = st.named || in && !e.Invert
					st.negOwn = st.negOwn || e.Invert
					continue
				}
				// A verdict map: the bridge's element decides.
				if !in {
					break exprs
				}
				st.named = true
				switch code {
				case 1: // NF_ACCEPT
					if st.counts() {
						return accepted
					}
				case 0: // NF_DROP
					if st.ends() {
						return dropped
					}
				case unix.NFT_JUMP, unix.NFT_GOTO:
					if out, done := a.follow(&st, target, code == unix.NFT_GOTO, l, stack, base); done {
						return out
					}
				}
				break exprs
			case *expr.Match:
				switch e.Name {
				case "comment":
				case "conntrack", "state":
					st.ctState = true
				default:
					st.constrained = true
				}
			case *expr.Counter, *expr.Log:
			case *expr.Reject:
				if st.ends() {
					return dropped
				}
			case *expr.Target:
				if e.Name == "REJECT" && st.ends() {
					return dropped
				}
			case *expr.Verdict:
				switch e.Kind {
				case expr.VerdictAccept:
					if st.counts() {
						return accepted
					}
				case expr.VerdictDrop:
					if st.ends() {
						return dropped
					}
				case expr.VerdictReturn:
					if st.ends() {
						return through
					}
				case expr.VerdictJump, expr.VerdictGoto:
					if out, done := a.follow(&st, e.Chain, e.Kind == expr.VerdictGoto, l, stack, base); done {
						return out
					}
				}
			}
		}
	}
	return through
}

// cmp reads one comparison of a rule into st.
func (a *chainReader) cmp(st *rule, e *expr.Cmp, kind regKind, mask uint32, l leg) {
	var value uint32
	if len(e.Data) >= 4 {
		value = binary.NativeEndian.Uint32(e.Data)
	}
	switch kind {
	case regOwnName:
		match := matchesAny(e.Data, []string{l.bridge})
		switch e.Op {
		case expr.CmpOpEq:
			st.applies = match
			st.named = st.named || match
		case expr.CmpOpNeq: // iifname != "eth0": met, but not a name
			st.applies = !match
			st.negOwn = true
		default:
			st.constrained = true
		}
	case regOtherName:
		// The other side is the way out (or in): never lo, never one of
		// berth's bridges.
		if e.Op == expr.CmpOpEq && (matchesAny(e.Data, a.bridges) || matchesAny(e.Data, []string{"lo"})) {
			st.applies = false
		}
		st.otherSide = true
	case regCtState:
		// ct state new (…) is met by a new connection; a state set without
		// NEW (established,related) is not.
		if !(e.Op == expr.CmpOpNeq && value == 0 && mask&ctStateNew != 0) {
			st.ctState = true
		}
	case regCtStatus:
		// ct status dnat: the traffic to a published port, which is l
		// going in, never l going out, nor to a routed network's ports,
		// nor (hairpin aside) between the bridge's ports.
		if e.Op == expr.CmpOpNeq && value == 0 && mask == ctStatusDNAT {
			if l.out || l.routed || l.within {
				st.applies = false // routed ports are not DNATed
			} else {
				st.named = true
			}
			return
		}
		st.constrained = true
	default:
		st.constrained = true
	}
}

// follow reads the chain a jump or goto of the rule st goes to, and says
// whether that decides the chain that made it, and how.
func (a *chainReader) follow(st *rule, target string, isGoto bool, l leg, stack map[string]bool, base bool) (outcome, bool) {
	if !st.applies || st.ctState || stack[target] {
		return through, false
	}
	switch sub := a.verdict(target, l, stack, false); {
	case sub == accepted && st.counts():
		return accepted, true
	case !st.ends(): // the jump may not be taken: read on
	case sub == dropped:
		return dropped, true
	case isGoto && base && a.policyAccept:
		return accepted, true
	case isGoto && base:
		return dropped, true
	case isGoto: // the goto'd chain fell through: back to our caller
		return through, true
	}
	return through, false
}

// elementVerdict reads a verdict map element's verdict: its code
// (NF_ACCEPT 1, NF_DROP 0, NFT_JUMP -3, NFT_GOTO -4) and, for a jump or
// goto, the chain. The library leaves a listed element's verdict in Val,
// as the kernel's nested NFTA_DATA_VERDICT: an NFTA_VERDICT_CODE
// attribute (a big-endian int32), then NFTA_VERDICT_CHAIN's name.
func elementVerdict(el nftlib.SetElement) (code int32, chain string, ok bool) {
	if v := el.VerdictData; v != nil {
		return int32(v.Kind), v.Chain, true
	}
	b := el.Val
	for len(b) >= 4 {
		n := int(binary.LittleEndian.Uint16(b[0:2]))
		typ := binary.LittleEndian.Uint16(b[2:4]) &^ unix.NLA_F_NESTED
		if n < 4 || n > len(b) {
			break
		}
		switch typ {
		case unix.NFTA_VERDICT_CODE:
			if n >= 8 {
				code, ok = int32(binary.BigEndian.Uint32(b[4:8])), true
			}
		case unix.NFTA_VERDICT_CHAIN:
			chain = string(bytes.TrimRight(b[4:n], "\x00"))
		}
		b = b[min((n+3)&^3, len(b)):]
	}
	return code, chain, ok
}

// matchesAny reports whether an interface name comparison's data names
// one of bridges: exactly when it holds the name's terminating NUL (nft
// pads it to 16 bytes, iptables-nft adds one), else as a prefix
// (iptables' "br+", nft's "br-*").
func matchesAny(data []byte, bridges []string) bool {
	name, exact := data, false
	if i := bytes.IndexByte(data, 0); i >= 0 {
		name, exact = data[:i], true
	}
	for _, b := range bridges {
		if exact && string(name) == b || !exact && len(name) > 0 && strings.HasPrefix(b, string(name)) {
			return true
		}
	}
	return false
}
