package dns

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"

	mdns "github.com/miekg/dns"
)

// ttl of berth's own answers. Docker uses 600 s; berth uses 0 so that a
// caching stub in a container cannot keep a removed container's address:
// answers change at once after rm, connect and disconnect, and asking
// again costs a few microseconds.
const ttl = 0

// Names is what a resolver asks about berth's containers; the network
// controller implements it (network.Controller).
type Names interface {
	// Resolve returns the addresses of name, of both families, for the
	// containers sandboxID shares a user-defined network with: the IPv4
	// address and, on a network with IPv6, the IPv6 one. ok says the name
	// exists; the caller picks the family asked for (and may reorder the
	// slice).
	Resolve(sandboxID, name string) ([]netip.Addr, bool)
	// ResolveAddr returns the name of the container holding a (IPv4 or
	// IPv6) on one of sandboxID's networks, for reverse lookups.
	ResolveAddr(sandboxID string, a netip.Addr) (string, bool)
	// ExternalAccess reports whether the sandbox is on a network that leads
	// out; queries are forwarded upstream only then.
	ExternalAccess(sandboxID string) bool
}

// answerLocal builds the reply to q from berth's names, or returns nil when
// the question is not about one of them and must be forwarded. maxSize is
// what the client can take (512, its EDNS0 size, or 65535 over TCP).
func answerLocal(q *mdns.Msg, names Names, sandboxID string, maxSize int) *mdns.Msg {
	if bad := malformed(q); bad != nil {
		return bad
	}
	qs := q.Question[0]
	if qs.Qclass != mdns.ClassINET {
		return nil
	}
	var resp *mdns.Msg
	switch {
	case qs.Qtype == mdns.TypePTR:
		resp = answerPTR(q, names, sandboxID)
	case answeredLocally(qs.Qtype):
		resp = answerName(q, names, sandboxID)
	}
	if resp == nil {
		return nil
	}
	if opt := q.IsEdns0(); opt != nil {
		resp.SetEdns0(uint16(max(maxSize, mdns.MinMsgSize)), false)
	}
	resp.Truncate(maxSize)
	return resp
}

// malformed answers what no server could answer: no single question
// (FORMERR), or an opcode other than QUERY (NOTIMP).
func malformed(q *mdns.Msg) *mdns.Msg {
	switch {
	case q.Response:
		return nil
	case q.Opcode != mdns.OpcodeQuery:
		return new(mdns.Msg).SetRcode(q, mdns.RcodeNotImplemented)
	case len(q.Question) != 1:
		return new(mdns.Msg).SetRcode(q, mdns.RcodeFormatError)
	}
	return nil
}

// answeredLocally says which questions about a name berth answers itself,
// as Docker's resolver (serveDNS): A, AAAA and MX. Any other type (TXT,
// ANY, SRV, ...) goes upstream even for a container's name.
func answeredLocally(qtype uint16) bool {
	return qtype == mdns.TypeA || qtype == mdns.TypeAAAA || qtype == mdns.TypeMX
}

// answerName answers A with every IPv4 address of the name and AAAA with
// every IPv6 one, shuffled (a shared alias spreads load). A berth name
// with no address of the family asked for, and MX of any berth name, get
// "the name exists, no data of that type" (NOERROR, no answers), as
// moby's handleIPQuery and handleMXQuery: AAAA for an IPv4-only container
// (A for an IPv6-only one) does not wander off to the upstreams, and MX
// gives mail clients the implicit MX of RFC 5321.
func answerName(q *mdns.Msg, names Names, sandboxID string) *mdns.Msg {
	qs := q.Question[0]
	addrs, ok := names.Resolve(sandboxID, qs.Name)
	if !ok {
		return nil
	}
	resp := reply(q)
	bits := addrBits(qs.Qtype)
	if bits == 0 {
		return resp
	}
	rand.Shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
	for _, a := range addrs {
		if a.BitLen() != bits {
			continue
		}
		hdr := mdns.RR_Header{Name: qs.Name, Rrtype: qs.Qtype, Class: mdns.ClassINET, Ttl: ttl}
		if bits == 32 {
			b := a.As4()
			resp.Answer = append(resp.Answer, &mdns.A{Hdr: hdr, A: net.IP(b[:])})
		} else {
			b := a.As16()
			resp.Answer = append(resp.Answer, &mdns.AAAA{Hdr: hdr, AAAA: net.IP(b[:])})
		}
	}
	return resp
}

// addrBits is the length of the addresses that answer qtype: 32 for A,
// 128 for AAAA, 0 for a type answered with no records (MX).
func addrBits(qtype uint16) int {
	switch qtype {
	case mdns.TypeA:
		return 32
	case mdns.TypeAAAA:
		return 128
	}
	return 0
}

// answerPTR answers a reverse lookup of a container's address with
// "name.network.", Docker's form.
func answerPTR(q *mdns.Msg, names Names, sandboxID string) *mdns.Msg {
	qs := q.Question[0]
	a, ok := parseReverse(qs.Name)
	if !ok {
		return nil
	}
	name, ok := names.ResolveAddr(sandboxID, a)
	if !ok {
		return nil
	}
	resp := reply(q)
	resp.Answer = append(resp.Answer, &mdns.PTR{
		Hdr: mdns.RR_Header{Name: qs.Name, Rrtype: mdns.TypePTR, Class: mdns.ClassINET, Ttl: ttl},
		Ptr: mdns.Fqdn(name),
	})
	return resp
}

// reply is an empty NOERROR answer to q with recursion available, as
// Docker's resolver sets it.
func reply(q *mdns.Msg) *mdns.Msg {
	resp := new(mdns.Msg).SetReply(q)
	resp.RecursionAvailable = true
	return resp
}

// parseReverse turns "4.3.2.1.in-addr.arpa." into 1.2.3.4 and the 32
// nibbles of "1.0.…0.d.f.ip6.arpa." into fd00::1. Anything else under
// those domains (a partial address, a label of two digits) is not an
// address berth holds and goes upstream, as moby's handlePTRQuery finds
// no name for it.
func parseReverse(name string) (netip.Addr, bool) {
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	if rest, ok := strings.CutSuffix(name, ".in-addr.arpa"); ok {
		return parseReverse4(rest)
	}
	if rest, ok := strings.CutSuffix(name, ".ip6.arpa"); ok {
		return parseReverse6(rest)
	}
	return netip.Addr{}, false
}

// parseReverse4 reads "4.3.2.1" as 1.2.3.4.
func parseReverse4(rest string) (netip.Addr, bool) {
	labels := strings.Split(rest, ".")
	if len(labels) != 4 {
		return netip.Addr{}, false
	}
	slices.Reverse(labels)
	a, err := netip.ParseAddr(strings.Join(labels, "."))
	if err != nil || !a.Is4() {
		return netip.Addr{}, false
	}
	return a, true
}

// parseReverse6 reads 32 one-digit hex labels, the lowest nibble first
// (lower case: parseReverse folded the name).
func parseReverse6(rest string) (netip.Addr, bool) {
	const nibbles = 32
	if len(rest) != 2*nibbles-1 {
		return netip.Addr{}, false
	}
	var b [16]byte
	for i := range nibbles {
		if i > 0 && rest[2*i-1] != '.' {
			return netip.Addr{}, false
		}
		var v byte
		switch c := rest[2*i]; {
		case '0' <= c && c <= '9':
			v = c - '0'
		case 'a' <= c && c <= 'f':
			v = c - 'a' + 10
		default:
			return netip.Addr{}, false
		}
		n := nibbles - 1 - i // counted from the address's first nibble
		b[n/2] |= v << (4 * (1 - n%2))
	}
	return netip.AddrFrom16(b), true
}

// clientLimit is the largest reply the client of q accepts over proto.
func clientLimit(q *mdns.Msg, proto string) int {
	if proto == "tcp" {
		return mdns.MaxMsgSize
	}
	size := mdns.MinMsgSize
	if opt := q.IsEdns0(); opt != nil && int(opt.UDPSize()) > size {
		size = int(opt.UDPSize())
	}
	return size
}
