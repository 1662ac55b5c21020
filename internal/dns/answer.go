package dns

import (
	"math/rand/v2"
	"net"
	"net/netip"
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
	// Resolve returns the addresses of name for the containers sandboxID
	// shares a user-defined network with.
	Resolve(sandboxID, name string) ([]netip.Addr, bool)
	// ResolveAddr returns the name of the container holding a on one of
	// sandboxID's networks, for reverse lookups.
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

// answerName answers A with every address, shuffled (a shared alias
// spreads load); for AAAA and MX of a berth name it says "the name
// exists, no data of that type" (NOERROR, no answers), so AAAA for an
// IPv4-only container does not wander off to the upstreams, and MX gives
// mail clients the implicit MX of RFC 5321.
func answerName(q *mdns.Msg, names Names, sandboxID string) *mdns.Msg {
	qs := q.Question[0]
	addrs, ok := names.Resolve(sandboxID, qs.Name)
	if !ok {
		return nil
	}
	resp := reply(q)
	if qs.Qtype != mdns.TypeA {
		return resp
	}
	rand.Shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
	for _, a := range addrs {
		if !a.Is4() {
			continue
		}
		b := a.As4()
		resp.Answer = append(resp.Answer, &mdns.A{
			Hdr: mdns.RR_Header{Name: qs.Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: ttl},
			A:   net.IP(b[:]),
		})
	}
	return resp
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

// parseReverse turns "4.3.2.1.in-addr.arpa." into 1.2.3.4. IPv6 reverse
// names are not berth's (its networks are IPv4) and go upstream.
func parseReverse(name string) (netip.Addr, bool) {
	rest, ok := strings.CutSuffix(strings.ToLower(name), ".in-addr.arpa.")
	if !ok {
		rest, ok = strings.CutSuffix(strings.ToLower(name), ".in-addr.arpa")
	}
	if !ok {
		return netip.Addr{}, false
	}
	labels := strings.Split(rest, ".")
	if len(labels) != 4 {
		return netip.Addr{}, false
	}
	for i, j := 0, len(labels)-1; i < j; i, j = i+1, j-1 {
		labels[i], labels[j] = labels[j], labels[i]
	}
	a, err := netip.ParseAddr(strings.Join(labels, "."))
	if err != nil || !a.Is4() {
		return netip.Addr{}, false
	}
	return a, true
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
