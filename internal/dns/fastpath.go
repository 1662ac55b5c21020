package dns

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"

	mdns "github.com/miekg/dns"
)

// The fast path answers the common query, a stub resolver asking for a
// container's address, straight from the datagram's bytes into the reply's:
// no message is decoded into structs, nothing is allocated but the address
// list the Names return. It takes only what it can answer byte for byte as
// the general path (answerLocal, then miekg/dns packing) would: QUERY, one
// question of class IN for a name of letters, digits, '-' and '_', no
// records but perhaps an OPT, an answer that fits the client's limit
// without compression. Everything else (PTR, names that are not berth's,
// anything odd) goes the general way; TestFastPathMatchesGeneralPath holds
// the two to the same bytes.

const (
	headerLen  = 12
	maxNameLen = 255 // on the wire, as miekg/dns limits it
	optLen     = 11  // an OPT record without options
	rrFix      = 10  // type, class, TTL and RDLENGTH, after the name
)

// plainQuery is what the fast path reads of a query.
type plainQuery struct {
	name     []byte // the question's name, lower case, dotted, with the final dot
	wireName []byte // the question's name as sent (its case kept)
	qtype    uint16
	limit    int  // the largest reply the client takes
	edns     bool // the query had an OPT record
}

// parsePlainQuery reads pkt when the fast path can answer it; nameBuf
// holds the dotted name. ok is false for anything else, which the general
// path then judges (including garbage, which gets no reply).
func parsePlainQuery(pkt []byte, nameBuf *[maxNameLen]byte) (q plainQuery, ok bool) {
	if len(pkt) < headerLen {
		return q, false
	}
	flags := binary.BigEndian.Uint16(pkt[2:])
	if flags&0x8000 != 0 || (flags>>11)&0xf != mdns.OpcodeQuery {
		return q, false // an answer, or not QUERY
	}
	if binary.BigEndian.Uint16(pkt[4:]) != 1 || binary.BigEndian.Uint16(pkt[6:]) != 0 ||
		binary.BigEndian.Uint16(pkt[8:]) != 0 || binary.BigEndian.Uint16(pkt[10:]) > 1 {
		return q, false
	}
	off, n := headerLen, 0
	for {
		if off >= len(pkt) {
			return q, false
		}
		l := int(pkt[off])
		off++
		if l == 0 {
			break
		}
		if l > 63 || off+l > len(pkt) || off-headerLen+l+1 > maxNameLen {
			return q, false // a compression pointer (none belongs here), or too long
		}
		for _, c := range pkt[off : off+l] {
			switch {
			case 'A' <= c && c <= 'Z':
				c += 'a' - 'A'
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
			default:
				return q, false // dots, escapes, bytes miekg/dns prints as \DDD
			}
			nameBuf[n] = c
			n++
		}
		nameBuf[n] = '.'
		n++
		off += l
	}
	if n == 0 || off+4 > len(pkt) {
		return q, false // the root, or no type and class
	}
	q.name, q.wireName = nameBuf[:n], pkt[headerLen:off]
	q.qtype = binary.BigEndian.Uint16(pkt[off:])
	if binary.BigEndian.Uint16(pkt[off+2:]) != mdns.ClassINET || !answeredLocally(q.qtype) {
		return q, false
	}
	off += 4
	q.limit = mdns.MinMsgSize
	if binary.BigEndian.Uint16(pkt[10:]) == 1 {
		// An OPT: root name, type OPT, class = UDP size, TTL, RDLENGTH, options.
		if off+optLen > len(pkt) || pkt[off] != 0 || binary.BigEndian.Uint16(pkt[off+1:]) != mdns.TypeOPT {
			return q, false
		}
		q.edns = true
		q.limit = max(q.limit, int(binary.BigEndian.Uint16(pkt[off+3:])))
		end := off + optLen + int(binary.BigEndian.Uint16(pkt[off+9:]))
		if end > len(pkt) || !plainOptions(pkt[off+optLen:end]) {
			return q, false
		}
		off = end
	}
	if off != len(pkt) {
		return q, false
	}
	return q, true
}

// plainOptions reports whether b, an OPT record's data, is options that
// exactly fill it, each of a kind whose content miekg/dns reads without
// judging it (NSID, cookie, padding): the general path drops a query
// whose options it cannot unpack, so the fast path must not answer it
// (found by FuzzFastPath: an option longer than the record's data).
func plainOptions(b []byte) bool {
	for len(b) > 0 {
		if len(b) < 4 {
			return false
		}
		code, n := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		if 4+n > len(b) || (code != mdns.EDNS0NSID && code != mdns.EDNS0COOKIE && code != mdns.EDNS0PADDING) {
			return false
		}
		b = b[4+n:]
	}
	return true
}

// answerPlain writes into out the reply to pkt (parsed as q) given the
// addresses of its name: every IPv4 address for A, every IPv6 address for
// AAAA, shuffled; no records for MX or for a name with no address of the
// family asked for (the name exists, with no data of that type).
// It returns the reply's length, or 0 when it does not fit out or the
// client's limit (the general path then truncates).
func answerPlain(pkt []byte, q plainQuery, addrs []netip.Addr, out []byte) int {
	bits := addrBits(q.qtype)
	n := 0
	if bits > 0 {
		for _, a := range addrs {
			if a.BitLen() == bits {
				n++
			}
		}
	}
	rdLen := bits / 8
	qend := headerLen + len(q.wireName) + 4
	size := qend + n*(len(q.wireName)+rrFix+rdLen)
	if q.edns {
		size += optLen
	}
	if size > q.limit || size > len(out) || n > 0xffff {
		return 0
	}
	out = out[:size]
	flags := binary.BigEndian.Uint16(pkt[2:])
	binary.BigEndian.PutUint16(out[0:], binary.BigEndian.Uint16(pkt)) // ID
	// QR, RA, and the query's RD and CD; opcode QUERY, NOERROR.
	binary.BigEndian.PutUint16(out[2:], 0x8000|0x0080|flags&(0x0100|0x0010))
	binary.BigEndian.PutUint16(out[4:], 1)
	binary.BigEndian.PutUint16(out[6:], uint16(n))
	binary.BigEndian.PutUint16(out[8:], 0)
	binary.BigEndian.PutUint16(out[10:], 0)
	if q.edns {
		out[11] = 1
	}
	copy(out[headerLen:], pkt[headerLen:qend])
	off := qend
	if n > 0 {
		rand.Shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
		for _, a := range addrs {
			if a.BitLen() != bits {
				continue
			}
			off += copy(out[off:], q.wireName)
			binary.BigEndian.PutUint16(out[off:], q.qtype)
			binary.BigEndian.PutUint16(out[off+2:], mdns.ClassINET)
			binary.BigEndian.PutUint32(out[off+4:], ttl)
			binary.BigEndian.PutUint16(out[off+8:], uint16(rdLen))
			if bits == 32 {
				b := a.As4()
				copy(out[off+rrFix:], b[:])
			} else {
				b := a.As16()
				copy(out[off+rrFix:], b[:])
			}
			off += rrFix + rdLen
		}
	}
	if q.edns {
		out[off] = 0
		binary.BigEndian.PutUint16(out[off+1:], mdns.TypeOPT)
		binary.BigEndian.PutUint16(out[off+3:], uint16(q.limit))
		clear(out[off+5 : off+optLen]) // extended rcode, version, flags, no options
	}
	return size
}
