package nftables

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"

	nftlib "github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// This file answers, for one packet, what the host's other tables'
// forward chains do to it (berth explain). ForwardBlockers, beside it,
// asks a coarser question for docker info's warnings: whether a chain
// accepts any of a bridge's traffic. Here both interfaces, the
// addresses, the protocol and port after DNAT and the conntrack state
// are known, so each rule's matches are evaluated as the kernel would,
// three-valued: a match on something the packet does not say (a mark,
// a source port, an interval set, an xtables match) may or may not hold,
// and a verdict behind such a match leaves the answer undecided rather
// than guessed.

// ForwardPacket is the first packet of a new connection on the forward
// hook, after any DNAT.
type ForwardPacket struct {
	Iif, Oif string
	Src, Dst netip.Addr
	Proto    uint8 // IP protocol number
	// Sport and Dport are the ports, 0 when unknown (a client's source
	// port).
	Sport, Dport uint16
	DNAT         bool // a published port's traffic (ct status dnat)
	// Reply: a packet of the answer (ct state established, direction
	// reply), which crosses the forward hook too.
	Reply bool
	// PreConntrack: seen before conntrack (a prerouting chain of a
	// priority below -200, raw): ct state is invalid, the rest unknown.
	PreConntrack bool
}

// ReplyTo is the first packet of the answer to p: the other way, from
// the port p was sent to.
func ReplyTo(p ForwardPacket) ForwardPacket {
	return ForwardPacket{Iif: p.Oif, Oif: p.Iif, Src: p.Dst, Dst: p.Src, Proto: p.Proto, Sport: p.Dport, Dport: p.Sport, DNAT: p.DNAT, Reply: true}
}

// ForwardDecision is what one other table's forward base chain does to
// a packet that it drops or may drop.
type ForwardDecision struct {
	Family, Table, Chain string
	// Dropped: it surely drops it; else it may (Undecided).
	Dropped bool
	// Rule is the deciding rule ("rule handle 7", with its comment),
	// "policy drop"; for an undecided chain, the rule whose match
	// cannot be read.
	Rule string
}

func (d ForwardDecision) String() string {
	return fmt.Sprintf("table %s %s, chain %s", d.Family, d.Table, d.Chain)
}

// OtherForward evaluates pkt in every forward base chain of the tables
// other than berth's (inet berth and berth-cni's) in the namespace at
// netnsPath ("" is the caller's), in priority order. It returns the
// first chain that surely drops it, else the chains that may.
func OtherForward(netnsPath string, pkt ForwardPacket) (dropped *ForwardDecision, undecided []ForwardDecision, err error) {
	return otherHook(netnsPath, *nftlib.ChainHookForward, func(int32) []ForwardPacket { return []ForwardPacket{pkt} })
}

// OtherInput is OtherForward for a packet to the host itself (the input
// hook, Oif ""), or with Reply for the host's answer (the output hook,
// Iif ""): a host firewall in front of its own services.
func OtherInput(netnsPath string, pkt ForwardPacket) (dropped *ForwardDecision, undecided []ForwardDecision, err error) {
	hook := *nftlib.ChainHookInput
	if pkt.Reply {
		hook = *nftlib.ChainHookOutput
	}
	return otherHook(netnsPath, hook, func(int32) []ForwardPacket { return []ForwardPacket{pkt} })
}

// OtherPrerouting is OtherForward for a packet as it arrives, in the
// filter chains of the prerouting hook (raw, mangle: a raw drop such as
// Docker 28's for direct access). A chain sees the packet as it is at
// its priority: before conntrack (below -200, raw) with no entry, then
// pre, as it arrived, up to DNAT (-100), and post, after any DNAT,
// beyond; at -200 and -100 exactly the order is the kernel's choice, so
// both ways are read and must agree.
func OtherPrerouting(netnsPath string, pre, post ForwardPacket) (dropped *ForwardDecision, undecided []ForwardDecision, err error) {
	raw := pre
	raw.PreConntrack = true
	return otherHook(netnsPath, *nftlib.ChainHookPrerouting, func(prio int32) []ForwardPacket {
		switch {
		case prio < -200:
			return []ForwardPacket{raw}
		case prio == -200:
			return []ForwardPacket{raw, pre}
		case prio < -100:
			return []ForwardPacket{pre}
		case prio == -100:
			return []ForwardPacket{pre, post}
		}
		return []ForwardPacket{post}
	})
}

func otherHook(netnsPath string, hook nftlib.ChainHook, packets func(prio int32) []ForwardPacket) (dropped *ForwardDecision, undecided []ForwardDecision, err error) {
	conn, done, _, bases, err := otherBaseChains(netnsPath, func(ch *nftlib.Chain) bool { return *ch.Hooknum == hook && ch.Type != nftlib.ChainTypeNAT })
	if err != nil {
		return nil, nil, err
	}
	defer done()
	prio := func(c *nftlib.Chain) int32 {
		if c.Priority == nil {
			return 0
		}
		return int32(*c.Priority)
	}
	slices.SortStableFunc(bases, func(a, b *nftlib.Chain) int { return cmp.Compare(prio(a), prio(b)) })
	for _, ch := range bases {
		family := familyName(ch.Table.Family)
		d := ForwardDecision{Family: family, Table: ch.Table.Name, Chain: ch.Name}
		var res evResult
		for i, pkt := range packets(prio(ch)) {
			six := pkt.Dst.Is6() && !pkt.Dst.Is4In6()
			if family == "ip" && six || family == "ip6" && !six {
				res = evThrough
				break
			}
			ev := &packetEval{tableReader: newTableReader(conn, ch.Table), pkt: pkt, six: six}
			r, rule := ev.base(ch)
			switch {
			case i == 0:
				res, d.Rule = r, rule
			case r != res:
				res, d.Rule = evUndecided, "its priority is the DNAT's or conntrack's own, so the kernel's order decides"
			}
		}
		switch res {
		case evDrop:
			d.Dropped = true
			return &d, undecided, nil
		case evUndecided:
			undecided = append(undecided, d)
		}
	}
	return nil, undecided, nil
}

// OtherNAT lists the nat chains of other tables on the prerouting and
// output hooks ("table ip nat, chain PREROUTING"): a REDIRECT or DNAT
// there changes where a packet goes, which explain does not apply.
func OtherNAT(netnsPath string) ([]string, error) {
	conn, done, _, chains, err := otherBaseChains(netnsPath, func(ch *nftlib.Chain) bool {
		return ch.Type == nftlib.ChainTypeNAT && (*ch.Hooknum == *nftlib.ChainHookPrerouting || *ch.Hooknum == *nftlib.ChainHookOutput)
	})
	if err != nil {
		return nil, err
	}
	defer done()
	var out []string
	for _, ch := range chains {
		if rules, err := conn.GetRules(ch.Table, ch); err == nil && len(rules) == 0 {
			continue // an empty chain changes nothing
		}
		out = append(out, fmt.Sprintf("table %s %s, chain %s", familyName(ch.Table.Family), ch.Table.Name, ch.Name))
	}
	return out, nil
}

// tri is a match's value: no, maybe (it reads what the packet does not
// say), yes.
type tri int

const (
	no tri = iota
	maybe
	yes
)

// evResult is what a chain does to the packet.
type evResult int

const (
	evThrough evResult = iota // no rule decided: back to the caller
	evAccept
	evDrop
	evUndecided
)

// packetEval walks one base chain and the chains it jumps to.
type packetEval struct {
	*tableReader
	pkt ForwardPacket
	six bool
	// mayAccept and mayDrop are the first rules met that might have
	// accepted or dropped the packet, had their unreadable matches held.
	mayAccept, mayDrop string
	visited            int
}

// base evaluates a base chain: its rules, then its policy. It returns
// the result and the rule that decided it (or could have).
func (ev *packetEval) base(ch *nftlib.Chain) (evResult, string) {
	res, rule := ev.walk(ch.Name, 0)
	if ev.err != nil {
		return evUndecided, "its rules could not be read: " + ev.err.Error()
	}
	if res == evThrough {
		res, rule = evAccept, "policy accept"
		if ch.Policy != nil && *ch.Policy == nftlib.ChainPolicyDrop {
			res, rule = evDrop, "policy drop"
		}
	}
	switch {
	case res == evAccept && ev.mayDrop != "":
		return evUndecided, ev.mayDrop
	case res == evDrop && ev.mayAccept != "":
		return evUndecided, ev.mayAccept
	}
	return res, rule
}

// walk evaluates a chain's rules in order.
func (ev *packetEval) walk(chain string, depth int) (evResult, string) {
	if depth > 16 {
		return evUndecided, "jumps nested too deep"
	}
	for _, r := range ev.chain(chain) {
		if ev.visited++; ev.visited > 20000 {
			return evUndecided, "too many rules on the way (jumps fanning out)"
		}
		if res, rule, done := ev.rule(r, depth); done {
			return res, rule
		}
	}
	return evThrough, ""
}

// rule evaluates one rule; done reports that it ended the chain.
func (ev *packetEval) rule(r *nftlib.Rule, depth int) (res evResult, rule string, done bool) {
	name := describeRule(r)
	m := yes
	var regs registers
	verdict := func(kind expr.VerdictKind, target string) (evResult, string, bool) {
		switch kind {
		case expr.VerdictAccept:
			if m == maybe {
				ev.noteMay(&ev.mayAccept, name)
				return 0, "", false
			}
			return evAccept, name, true
		case expr.VerdictDrop:
			if m == maybe {
				ev.noteMay(&ev.mayDrop, name)
				return 0, "", false
			}
			return evDrop, name, true
		case expr.VerdictJump, expr.VerdictGoto:
			sub, subRule := ev.walk(target, depth+1)
			switch {
			case sub == evThrough && kind == expr.VerdictGoto && m == yes:
				return evThrough, "", true // back to the caller of this chain
			case sub == evThrough && kind == expr.VerdictGoto:
				ev.mayEitherWay(name) // perhaps back to the caller, perhaps on here
				return 0, "", false
			case sub == evThrough:
				return 0, "", false
			case m == maybe && sub == evAccept:
				ev.noteMay(&ev.mayAccept, subRule)
				return 0, "", false
			case m == maybe && sub == evDrop:
				ev.noteMay(&ev.mayDrop, subRule)
				return 0, "", false
			}
			return sub, subRule, true
		case expr.VerdictReturn:
			if m == yes {
				return evThrough, "", true
			}
			ev.mayEitherWay(name) // perhaps back to the caller, perhaps on here
			return 0, "", false
		case expr.VerdictContinue:
			return 0, "", false
		}
		// queue, stolen, an xtables target: ends the packet's way here in
		// a way a firewall's verdict does not say.
		if m == yes {
			return evUndecided, name, true
		}
		ev.mayEitherWay(name)
		return 0, "", false
	}
	for _, e := range r.Exprs {
		if m == no {
			return 0, "", false
		}
		switch e := e.(type) {
		case *expr.Meta:
			if !e.SourceRegister {
				regs.load(e.Register, ev.meta(e.Key))
			}
		case *expr.Payload:
			if e.OperationType == expr.PayloadLoad {
				regs.load(e.DestRegister, ev.payload(e.Base, e.Offset, e.Len))
			}
		case *expr.Ct:
			if !e.SourceRegister {
				regs.load(e.Register, ev.ct(e.Key))
				regs.status = e.Key == expr.CtKeySTATUS
			}
		case *expr.Immediate:
			regs.load(e.Register, e.Data)
		case *expr.Bitwise:
			status := regs.status
			src, known := regs.read(e.SourceRegister, int(e.Len))
			// Of ct status, only the DNAT bit is known (a reply's
			// SEEN_REPLY, a masquerade's SRC_NAT… are not modelled).
			if status && len(e.Mask) >= 4 && binary.NativeEndian.Uint32(e.Mask)&^ctStatusDNAT != 0 {
				known = false
			}
			if !known || len(e.Mask) < int(e.Len) || len(e.Xor) < int(e.Len) {
				regs.unknown(e.DestRegister, int(e.Len))
				break
			}
			out := make([]byte, e.Len)
			for i := range out {
				out[i] = src[i]&e.Mask[i] ^ e.Xor[i]
			}
			regs.load(e.DestRegister, out)
		case *expr.Cmp:
			if regs.status {
				m = min(m, maybe) // the whole of ct status: not known
				break
			}
			m = min(m, compare(&regs, e.Register, e.Op, e.Data))
		case *expr.Range:
			lo := compare(&regs, e.Register, expr.CmpOpGte, e.FromData)
			regs.reuse(e.Register, len(e.ToData))
			hi := compare(&regs, e.Register, expr.CmpOpLte, e.ToData)
			in := min(lo, hi)
			if e.Op == expr.CmpOpNeq && in != maybe {
				in = yes - in
			}
			m = min(m, in)
		case *expr.Lookup:
			s := ev.set(e.SetName)
			found, el := ev.lookup(&regs, e.SourceRegister, s)
			if !e.IsDestRegSet {
				if e.Invert && found != maybe {
					found = yes - found
				}
				m = min(m, found)
				break
			}
			if e.DestRegister != unix.NFT_REG_VERDICT {
				// A data map (meta mark set iifname map {…}): its value
				// goes into a register.
				switch found {
				case no:
					return 0, "", false
				case yes:
					regs.load(e.DestRegister, el.Val)
				default:
					regs.unknown(e.DestRegister, 16)
					m = min(m, maybe)
				}
				break
			}
			switch found {
			case no:
				return 0, "", false
			case maybe:
				ev.mayEitherWay(name)
				return 0, "", false
			}
			code, target, ok := elementVerdict(el)
			kinds := map[int32]expr.VerdictKind{1: expr.VerdictAccept, 0: expr.VerdictDrop, unix.NFT_JUMP: expr.VerdictJump,
				unix.NFT_GOTO: expr.VerdictGoto, unix.NFT_RETURN: expr.VerdictReturn, unix.NFT_CONTINUE: expr.VerdictContinue}
			kind, known := kinds[code]
			if !ok || !known {
				return verdict(expr.VerdictStolen, "")
			}
			return verdict(kind, target)
		case *expr.Verdict:
			return verdict(e.Kind, e.Chain)
		case *expr.Reject:
			return verdict(expr.VerdictDrop, "")
		case *expr.Target:
			if e.Name == "REJECT" {
				return verdict(expr.VerdictDrop, "")
			}
			return verdict(expr.VerdictStolen, "") // NFQUEUE, TARPIT…
		case *expr.Queue:
			return verdict(expr.VerdictQueue, "")
		case *expr.Match:
			if e.Name != "comment" {
				m = min(m, maybe)
				regs = registers{} // what it may have loaded is not known
			}
		case *expr.Counter, *expr.Log:
		case *expr.Objref:
			if e.Type != 1 { // a named counter counts; a limit or quota is a match
				m = min(m, maybe)
			}
		case *expr.Dynset:
			if len(e.Exprs) > 0 { // meter, update @set { … limit … }: a match
				m = min(m, maybe)
			}
		default:
			m = min(m, maybe) // limit, quota, fib, socket…: not read
			regs = registers{}
		}
	}
	return 0, "", false
}

// mayEitherWay notes a rule that may have taken the packet elsewhere,
// to an accept or a drop.
func (ev *packetEval) mayEitherWay(rule string) {
	ev.noteMay(&ev.mayAccept, rule)
	ev.noteMay(&ev.mayDrop, rule)
}

func (ev *packetEval) noteMay(first *string, rule string) {
	if *first == "" {
		*first = rule
	}
}

// meta is the value of a meta key for the packet; nil when unknown.
func (ev *packetEval) meta(k expr.MetaKey) []byte {
	switch k {
	case expr.MetaKeyIIFNAME:
		return ifname(ev.pkt.Iif)
	case expr.MetaKeyOIFNAME:
		return ifname(ev.pkt.Oif)
	case expr.MetaKeyNFPROTO:
		if ev.six {
			return []byte{unix.NFPROTO_IPV6}
		}
		return []byte{unix.NFPROTO_IPV4}
	case expr.MetaKeyL4PROTO:
		return []byte{ev.pkt.Proto}
	case expr.MetaKeyPROTOCOL:
		if ev.six {
			return []byte{0x86, 0xdd}
		}
		return []byte{0x08, 0x00}
	}
	return nil
}

// payload is a header field of the packet; nil when unknown.
func (ev *packetEval) payload(base expr.PayloadBase, off, n uint32) []byte {
	p := ev.pkt
	var hdr [40]byte
	var known [40]bool
	set := func(at int, b ...byte) {
		copy(hdr[at:], b)
		for i := range b {
			known[at+i] = true
		}
	}
	switch base {
	case expr.PayloadBaseNetworkHeader:
		if ev.six {
			set(6, p.Proto)
			set(8, p.Src.AsSlice()...)
			set(24, p.Dst.AsSlice()...)
		} else {
			set(9, p.Proto)
			set(12, p.Src.AsSlice()...)
			set(16, p.Dst.AsSlice()...)
		}
	case expr.PayloadBaseTransportHeader:
		switch p.Proto {
		case unix.IPPROTO_TCP, unix.IPPROTO_UDP:
			if p.Sport != 0 {
				set(0, byte(p.Sport>>8), byte(p.Sport))
			}
			if p.Dport != 0 {
				set(2, byte(p.Dport>>8), byte(p.Dport))
			}
			if p.Proto == unix.IPPROTO_TCP {
				set(13, map[bool]byte{false: 0x02, true: 0x12}[p.Reply]) // SYN, or the answer's SYN-ACK
			}
		case unix.IPPROTO_ICMP:
			set(0, map[bool]byte{false: 8, true: 0}[p.Reply]) // echo request, reply
		case unix.IPPROTO_ICMPV6:
			set(0, map[bool]byte{false: 128, true: 129}[p.Reply])
		}
	}
	if int(off)+int(n) > len(hdr) || n == 0 {
		return nil
	}
	for i := off; i < off+n; i++ {
		if !known[i] {
			return nil
		}
	}
	return slices.Clone(hdr[off : off+n])
}

// ctStateEstablished is nft's ct state established bit (1 << (IP_CT_ESTABLISHED + 1)).
const ctStateEstablished = 1 << 1

// ct is a conntrack key of the packet's connection; nil when unknown.
func (ev *packetEval) ct(k expr.CtKey) []byte {
	if ev.pkt.PreConntrack && k != expr.CtKeySTATE {
		return nil // no entry: the kernel's expression breaks; unknown is safe
	}
	switch k {
	case expr.CtKeySTATE:
		if ev.pkt.PreConntrack {
			return binary.NativeEndian.AppendUint32(nil, 1) // invalid: no conntrack entry yet
		}
		if ev.pkt.Reply {
			return binary.NativeEndian.AppendUint32(nil, ctStateEstablished)
		}
		return binary.NativeEndian.AppendUint32(nil, ctStateNew)
	case expr.CtKeySTATUS:
		var status uint32 = 1 << 8 // DST_NAT_DONE: the NAT core's binding, a null one without DNAT
		if ev.pkt.DNAT {
			status |= ctStatusDNAT
		}
		return binary.NativeEndian.AppendUint32(nil, status)
	case expr.CtKeyDIRECTION:
		if ev.pkt.Reply {
			return []byte{1}
		}
		return []byte{0} // original
	}
	return nil
}

// lookup finds the register's key in a set: yes with the element, no,
// or maybe (the key is not known, or the set holds intervals).
func (ev *packetEval) lookup(regs *registers, reg uint32, s *tableSet) (tri, nftlib.SetElement) {
	if s.failed {
		return maybe, nftlib.SetElement{}
	}
	if len(s.elems) == 0 {
		return no, nftlib.SetElement{}
	}
	key, known := regs.read(reg, len(s.elems[0].Key))
	if !known || s.interval {
		return maybe, nftlib.SetElement{}
	}
	for _, el := range s.elems {
		if bytes.Equal(el.Key, key) {
			return yes, el
		}
	}
	return no, nftlib.SetElement{}
}

// compare evaluates a comparison of the register's bytes with data.
func compare(regs *registers, reg uint32, op expr.CmpOp, data []byte) tri {
	v, known := regs.read(reg, len(data))
	if !known {
		return maybe
	}
	c := bytes.Compare(v, data)
	ok := map[expr.CmpOp]bool{expr.CmpOpEq: c == 0, expr.CmpOpNeq: c != 0, expr.CmpOpLt: c < 0,
		expr.CmpOpLte: c <= 0, expr.CmpOpGt: c > 0, expr.CmpOpGte: c >= 0}[op]
	if ok {
		return yes
	}
	return no
}

// registers is nftables' register file, as 4-byte slots: NFT_REG_1..4
// are 16 bytes each, NFT_REG32_00..15 4 bytes each, over the same
// storage. A value loaded takes whole slots, padded with zeros. A value
// is read once: nft and iptables-nft load before every comparison, so a
// second read means a load the library did not hand over (it skips
// expressions it does not know: rt, socket, xfrm…), and is unknown.
type registers struct {
	data  [64]byte
	known [64]bool
	used  [64]bool
	// status: the last load was ct status, of which only some bits are
	// modelled.
	status bool
}

func regOffset(reg uint32) int {
	if reg >= unix.NFT_REG32_00 {
		return int(reg-unix.NFT_REG32_00) * 4
	}
	return int(reg-unix.NFT_REG_1) * 16
}

// load writes v (nil: unknown) at reg.
func (r *registers) load(reg uint32, v []byte) {
	r.status = false
	if reg == unix.NFT_REG_VERDICT {
		return
	}
	if v == nil {
		r.unknown(reg, 16)
		return
	}
	off := regOffset(reg)
	n := (len(v) + 3) &^ 3
	for i := 0; i < n && off+i < len(r.data); i++ {
		r.data[off+i], r.known[off+i], r.used[off+i] = 0, true, false
		if i < len(v) {
			r.data[off+i] = v[i]
		}
	}
}

func (r *registers) unknown(reg uint32, n int) {
	r.status = false
	if reg == unix.NFT_REG_VERDICT {
		return
	}
	off := regOffset(reg)
	for i := 0; i < (n+3)&^3 && off+i < len(r.data); i++ {
		r.known[off+i], r.used[off+i] = false, false
	}
}

// read returns n bytes at reg, and whether they are known.
func (r *registers) read(reg uint32, n int) ([]byte, bool) {
	off := regOffset(reg)
	if reg == unix.NFT_REG_VERDICT || off+n > len(r.data) {
		return nil, false
	}
	known := true
	for i := off; i < off+n; i++ {
		known = known && r.known[i] && !r.used[i]
		r.used[i] = true
	}
	if !known {
		return nil, false
	}
	return r.data[off : off+n], true
}

// reuse lets reg be read again: a range compares one load with two bounds.
func (r *registers) reuse(reg uint32, n int) {
	off := regOffset(reg)
	for i := off; i < off+n && i < len(r.used); i++ {
		r.used[i] = false
	}
}

// describeRule names a rule for the user: its handle (nft -a list shows
// it) and its comment.
func describeRule(r *nftlib.Rule) string {
	s := fmt.Sprintf("rule handle %d", r.Handle)
	if c := ruleComment(r.UserData); c != "" {
		s += fmt.Sprintf(" comment %q", c)
	}
	return s
}

// ruleComment reads the comment from a rule's user data: type-length-
// value records, the comment's type being 0 (NFTNL_UDATA_RULE_COMMENT).
func ruleComment(ud []byte) string {
	for len(ud) >= 2 {
		typ, n := ud[0], int(ud[1])
		if 2+n > len(ud) {
			break
		}
		if typ == 0 {
			return string(bytes.TrimRight(ud[2:2+n], "\x00"))
		}
		ud = ud[2+n:]
	}
	return ""
}
