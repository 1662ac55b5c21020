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
		a := &chainReader{conn: conn, table: ch.Table, rules: map[string][]*nftlib.Rule{ch.Name: rules}}
		b := ForwardBlocker{Family: family, Table: ch.Table.Name, Chain: ch.Name, Why: why}
		for _, br := range bridges {
			if family == "ip" && !br.IPv4 || family == "ip6" && !br.IPv6 {
				continue
			}
			var dirs []string
			for _, l := range []leg{{br.Name, true}, {br.Name, false}} {
				if !a.accepts(ch.Name, l, map[string]bool{ch.Name: true}) {
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
	conn  *nftlib.Conn
	table *nftlib.Table
	rules map[string][]*nftlib.Rule
	sets  map[string][]nftlib.SetElement
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

// accepts reports whether chain lets l through: a rule that applies to
// l, names l's bridge as l's interface and accepts, or jumps or goes to
// a chain for it; or a rule that applies to l and jumps or goes to a
// chain (seen holds those already looked at) that lets l through.
func (a *chainReader) accepts(chain string, l leg, seen map[string]bool) bool {
	for _, r := range a.chain(chain) {
		applies, names := true, false
		side := map[uint32]bool{} // register → holds l's own interface
		loaded := map[uint32]bool{}
		for _, e := range r.Exprs {
			if !applies {
				break
			}
			switch e := e.(type) {
			case *expr.Meta:
				if !e.SourceRegister && (e.Key == expr.MetaKeyIIFNAME || e.Key == expr.MetaKeyOIFNAME) {
					loaded[e.Register] = true
					side[e.Register] = (e.Key == expr.MetaKeyIIFNAME) == l.out
				}
			case *expr.Cmp:
				if !loaded[e.Register] {
					continue // another match: taken as met
				}
				match := matchesAny(e.Data, []string{l.bridge})
				if !side[e.Register] {
					// The other side's name: some other interface (the
					// way out, for traffic out of the bridge), so not the
					// bridge itself; anything else is taken as met.
					if e.Op == expr.CmpOpEq && match {
						applies = false
					}
					continue
				}
				switch e.Op {
				case expr.CmpOpEq:
					applies = match
				case expr.CmpOpNeq: // iifname != "eth0": the bridge too
					applies = !match
				default:
					continue
				}
				names = applies
			case *expr.Lookup:
				if !loaded[e.SourceRegister] || !side[e.SourceRegister] {
					continue
				}
				var verdict *bool
				in := false
				for _, el := range a.set(e.SetName) {
					if matchesAny(el.Key, []string{l.bridge}) {
						in = true
						if lets, ok := elementLets(el); ok && e.IsDestRegSet {
							verdict = &lets
						}
					}
				}
				if e.IsDestRegSet { // a verdict map: its element decides
					if verdict != nil && *verdict {
						return true
					}
					applies = false
					continue
				}
				applies = in != e.Invert
				names = applies
			case *expr.Verdict:
				switch e.Kind {
				case expr.VerdictAccept:
					if names {
						return true
					}
				case expr.VerdictJump, expr.VerdictGoto:
					if names {
						return true // the bridge's own chain (firewalld's zones)
					}
					if !seen[e.Chain] {
						seen[e.Chain] = true
						if a.accepts(e.Chain, l, seen) {
							return true
						}
					}
				}
			}
		}
	}
	return false
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
