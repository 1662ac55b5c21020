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

// ForwardBlocker is another table's base chain on the forward hook that
// drops what its rules do not accept, none of whose rules, nor those of
// the chains they jump to, accepts one of berth's bridges' traffic.
type ForwardBlocker struct {
	Family, Table, Chain string
	// Why: "policy drop", or the unconditional drop or reject its last
	// rule is.
	Why string
}

func (b ForwardBlocker) String() string {
	return fmt.Sprintf("table %s %s, chain %s (%s)", b.Family, b.Table, b.Chain, b.Why)
}

// ForwardBlockers lists the forward chains of other tables, in the
// network namespace at netnsPath ("" is the caller's), that would drop
// traffic through bridges. Tables whose name starts with "berth" are
// berth's own (the daemon's and berth-cni's) and are skipped. A chain
// with a rule that accepts (or jumps for) one of bridges by input or
// output interface name (exactly, by a prefix such as iptables' "br+",
// or in a set), directly or in a chain it jumps to, is taken as the
// administrator's answer and left out. Rules of iptables-legacy are not
// in nftables and are not seen.
func ForwardBlockers(netnsPath string, bridges []string) ([]ForwardBlocker, error) {
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
		seen := map[string]bool{ch.Name: true}
		if namesBridge(conn, ch.Table, rules, bridges, seen) {
			continue
		}
		out = append(out, ForwardBlocker{Family: family, Table: ch.Table.Name, Chain: ch.Name, Why: why})
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

// namesBridge reports whether a rule of rules, or of a chain of t they
// jump or go to (seen holds those already looked at), lets one of
// bridges' traffic through: it matches the input or output interface's
// name with one of them (an equality, or a set or verdict map that holds
// it) and accepts, or jumps or goes to a chain for it. A rule that drops
// a bridge's traffic, or matches everything but it, is no answer.
func namesBridge(conn *nftlib.Conn, t *nftlib.Table, rules []*nftlib.Rule, bridges []string, seen map[string]bool) bool {
	for _, r := range rules {
		ifnameReg := map[uint32]bool{}
		names := false
		for _, e := range r.Exprs {
			switch e := e.(type) {
			case *expr.Meta:
				if !e.SourceRegister && (e.Key == expr.MetaKeyIIFNAME || e.Key == expr.MetaKeyOIFNAME) {
					ifnameReg[e.Register] = true
				}
			case *expr.Cmp:
				if ifnameReg[e.Register] && e.Op == expr.CmpOpEq && matchesAny(e.Data, bridges) {
					names = true
				}
			case *expr.Lookup:
				if !ifnameReg[e.SourceRegister] || e.Invert {
					continue
				}
				set, err := conn.GetSetByName(t, e.SetName)
				if err != nil {
					continue
				}
				elems, err := conn.GetSetElements(set)
				if err != nil {
					continue
				}
				for _, el := range elems {
					if !matchesAny(el.Key, bridges) {
						continue
					}
					if !e.IsDestRegSet {
						names = true
					} else if lets, ok := elementLets(el); ok && lets {
						return true // iifname vmap { "berth0" : accept }
					}
				}
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
						sub, err := conn.GetRules(t, &nftlib.Chain{Name: e.Chain, Table: t})
						if err == nil && namesBridge(conn, t, sub, bridges, seen) {
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
