package nftables

import (
	"bytes"
	"encoding/binary"
	"fmt"
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
	// published ports), in bridges' order.
	Dropped []string
	// Bridges are their names.
	Bridges []string
}

func (b ForwardBlocker) String() string {
	return fmt.Sprintf("table %s %s, chain %s (%s)", b.Family, b.Table, b.Chain, b.Why)
}

// leg is one bridge's traffic in one direction through the forward hook:
// out of the bridge (its input interface), or into it (its output one).
type leg struct {
	bridge string
	out    bool
}

// ForwardBlockers lists the forward chains of other tables, in the
// network namespace at netnsPath ("" is the caller's), that would drop
// traffic through bridges. Tables whose name starts with "berth" are
// berth's own (the daemon's and berth-cni's) and are skipped. A leg of a
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
	conn, done, err := dial(netnsPath)
	if err != nil {
		return nil, err
	}
	defer done()
	chains, err := conn.ListChains()
	if err != nil {
		return nil, fmt.Errorf("list nftables chains: %w", err)
	}
	var out []ForwardBlocker
	for _, ch := range chains {
		family := familyName(ch.Table.Family)
		if family == "" || strings.HasPrefix(ch.Table.Name, "berth") || ch.Hooknum == nil || *ch.Hooknum != *nftlib.ChainHookForward {
			continue
		}
		rules, err := conn.GetRules(ch.Table, ch)
		if err != nil {
			return nil, fmt.Errorf("list the rules of table %s %s chain %s: %w", family, ch.Table.Name, ch.Name, err)
		}
		why := ""
		if ch.Policy != nil && *ch.Policy == nftlib.ChainPolicyDrop {
			why = "policy drop"
		} else if len(rules) > 0 {
			why = unconditionalDrop(rules[len(rules)-1])
		}
		if why == "" {
			continue
		}
		a := &chainReader{conn: conn, table: ch.Table, rules: map[string][]*nftlib.Rule{ch.Name: rules},
			policyAccept: ch.Policy == nil || *ch.Policy == nftlib.ChainPolicyAccept}
		for _, br := range bridges {
			a.bridges = append(a.bridges, br.Name)
		}
		b := ForwardBlocker{Family: family, Table: ch.Table.Name, Chain: ch.Name, Why: why}
		for _, br := range bridges {
			if family == "ip" && !br.IPv4 || family == "ip6" && !br.IPv6 {
				continue
			}
			var dirs []string
			for _, l := range []leg{{br.Name, true}, {br.Name, false}} {
				if a.verdict(ch.Name, l, map[string]bool{ch.Name: true}) != accepted {
					dirs = append(dirs, map[bool]string{true: "out", false: "in"}[l.out])
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

// chainReader reads a table's chains and sets once each, for the legs
// of every bridge.
type chainReader struct {
	conn    *nftlib.Conn
	table   *nftlib.Table
	bridges []string // all of berth's
	// policyAccept: the base chain's policy, where a goto that ends ends.
	policyAccept bool
	rules        map[string][]*nftlib.Rule
	sets         map[string][]nftlib.SetElement
}

func (a *chainReader) chain(name string) []*nftlib.Rule {
	if r, ok := a.rules[name]; ok {
		return r
	}
	r, _ := a.conn.GetRules(a.table, &nftlib.Chain{Name: name, Table: a.table})
	a.rules[name] = r
	return r
}

func (a *chainReader) set(name string) []nftlib.SetElement {
	if a.sets == nil {
		a.sets = map[string][]nftlib.SetElement{}
	}
	if els, ok := a.sets[name]; ok {
		return els
	}
	var els []nftlib.SetElement
	if set, err := a.conn.GetSetByName(a.table, name); err == nil {
		els, _ = a.conn.GetSetElements(set)
	}
	a.sets[name] = els
	return els
}

// holdsOtherThanBridges reports whether set holds an interface name that
// is not one of berth's bridges (one that could be the way out).
func (a *chainReader) holdsOtherThanBridges(set string) bool {
	for _, el := range a.set(set) {
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
)

// outcome is what a chain does with a leg's new connections.
type outcome int

const (
	through  outcome = iota // no rule decided: back to the caller
	accepted                // accepted
	dropped                 // dropped or rejected
)

// verdict says what chain (seen holds the chains already looked at) does
// with l, reading its rules in order as the kernel does, with what is not
// an interface name taken as met:
//   - an accept counts when the rule matches nothing else, or matches l's
//     bridge as l's own interface (iifname "berth0" ip saddr … accept);
//   - a jump or goto the rule makes for l is followed: what the chain
//     jumped to accepts is accepted; what it drops is dropped when the
//     jump matched nothing but l's own interface; a goto to a chain that
//     does not decide ends at the base chain's policy;
//   - a drop or reject that matches nothing but l's own interface ends
//     the search: l is dropped (-i berth0 -j DROP before an accept), and
//     such a return goes back to the caller;
//   - a rule that matches the conntrack state (ESTABLISHED,RELATED: the
//     replies) never counts: it does not let a new connection through.
//
// The other side's interface (the way out, for the traffic out of the
// bridge) is unknown: a match on it is taken as met, unless it can only
// be one of berth's bridges.
func (a *chainReader) verdict(chain string, l leg, seen map[string]bool) outcome {
	for _, r := range a.chain(chain) {
		applies := true
		own, otherSide, constrained, ctState := false, false, false, false
		regs := map[uint32]regKind{}
		end := func() bool { return applies && !constrained && !ctState && !otherSide }
	exprs:
		for _, e := range r.Exprs {
			if !applies {
				break
			}
			switch e := e.(type) {
			case *expr.Meta:
				switch {
				case e.SourceRegister:
				case e.Key == expr.MetaKeyIIFNAME || e.Key == expr.MetaKeyOIFNAME:
					regs[e.Register] = regOtherName
					if (e.Key == expr.MetaKeyIIFNAME) == l.out {
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
					regs[e.Register] = regOther
					if e.Key == expr.CtKeySTATE {
						regs[e.Register] = regCtState
					}
				}
			case *expr.Bitwise:
				regs[e.DestRegister] = regs[e.SourceRegister]
			case *expr.Immediate:
				regs[e.Register] = regOther
			case *expr.Cmp:
				match := matchesAny(e.Data, []string{l.bridge})
				switch regs[e.Register] {
				case regOwnName:
					switch e.Op {
					case expr.CmpOpEq:
						applies = match
					case expr.CmpOpNeq: // iifname != "eth0": the bridge too
						applies = !match
					default:
						constrained = true
					}
					own = true
				case regOtherName:
					// The other side is the way out (or in), never one
					// of berth's bridges.
					if e.Op == expr.CmpOpEq && matchesAny(e.Data, a.bridges) {
						applies = false
					}
					otherSide = true
				case regCtState:
					ctState = true
				default:
					constrained = true
				}
			case *expr.Lookup:
				switch regs[e.SourceRegister] {
				case regOwnName:
				case regOtherName:
					otherSide = true
					if !e.IsDestRegSet && !e.Invert && !a.holdsOtherThanBridges(e.SetName) {
						applies = false
					}
					continue
				case regCtState:
					ctState = true
					continue
				default:
					constrained = true
					continue
				}
				own = true
				in, lets, decided := false, false, false
				for _, el := range a.set(e.SetName) {
					if matchesAny(el.Key, []string{l.bridge}) {
						in = true
						lets, decided = elementLets(el)
					}
				}
				if !e.IsDestRegSet {
					applies = in != e.Invert
					continue
				}
				// A verdict map: the bridge's element decides.
				if in && decided && !constrained && !ctState {
					if lets {
						return accepted
					}
					return dropped
				}
				break exprs
			case *expr.Match:
				if e.Name == "conntrack" || e.Name == "state" {
					ctState = true
				} else {
					constrained = true
				}
			case *expr.Reject:
				if end() {
					return dropped
				}
			case *expr.Target:
				if e.Name == "REJECT" && end() {
					return dropped
				}
			case *expr.Verdict:
				switch e.Kind {
				case expr.VerdictAccept:
					if applies && !ctState && (!constrained || own) {
						return accepted
					}
				case expr.VerdictDrop:
					if end() {
						return dropped
					}
				case expr.VerdictReturn:
					if end() {
						return through
					}
				case expr.VerdictJump, expr.VerdictGoto:
					if !applies || ctState || seen[e.Chain] {
						continue
					}
					seen[e.Chain] = true
					switch sub := a.verdict(e.Chain, l, seen); {
					case sub == accepted:
						return accepted
					case !end(): // the jump may not be taken: read on
					case sub == dropped:
						return dropped
					case e.Kind == expr.VerdictGoto && a.policyAccept:
						return accepted
					case e.Kind == expr.VerdictGoto:
						return dropped
					}
				}
			}
		}
	}
	return through
}

// elementLets reads a verdict map element's verdict: whether it
// accepts, jumps or goes to a chain, and whether it could tell. The
// library leaves a listed element's verdict in Val, as the kernel's
// nested NFTA_DATA_VERDICT: an NFTA_VERDICT_CODE attribute first, its
// code a big-endian int32 (NF_ACCEPT 1, NFT_JUMP -3, NFT_GOTO -4).
func elementLets(el nftlib.SetElement) (lets, ok bool) {
	if v := el.VerdictData; v != nil {
		return v.Kind == expr.VerdictAccept || v.Kind == expr.VerdictJump || v.Kind == expr.VerdictGoto, true
	}
	if len(el.Val) < 8 || binary.LittleEndian.Uint16(el.Val[2:4])&^unix.NLA_F_NESTED != unix.NFTA_VERDICT_CODE {
		return false, false
	}
	switch int32(binary.BigEndian.Uint32(el.Val[4:8])) {
	case 1, unix.NFT_JUMP, unix.NFT_GOTO:
		return true, true
	}
	return false, true
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
