package portalloc

import (
	"fmt"
	"iter"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/berth-net/berth/internal/network"
)

// How a port is chosen for a range or an ephemeral request, as moby's
// portallocator does: each range (the ephemeral one included) keeps the
// port it gave last, per protocol and address, and the next search
// starts after it, wrapping at the range's end. So `-p 80` gets 32768,
// then 32769, …, and a port let go is not handed to the next container at
// once (a client of the old one would reach the new one). Ports the
// kernel reserves (ip_local_reserved_ports) are skipped in the ephemeral
// range, as the kernel's own picks skip them; a range asked for by name
// gets them, as an exact port would.

// portSpan is the ports a search may give, lo to hi.
type portSpan struct {
	lo, hi   uint16
	reserved map[uint16]bool // skipped: ip_local_reserved_ports, for the ephemeral range
}

// from yields the span's ports once each, from p on, wrapping at hi to lo.
func (s portSpan) from(p uint16) iter.Seq[uint16] {
	return func(yield func(uint16) bool) {
		if s.hi < s.lo || s.lo == 0 {
			return
		}
		if p < s.lo || p > s.hi {
			p = s.lo
		}
		for n := int(s.hi-s.lo) + 1; n > 0; n-- {
			if !yield(p) {
				return
			}
			if p == s.hi {
				p = s.lo
			} else {
				p++
			}
		}
	}
}

// cursorKey names a range's cursor: moby keeps one per address, protocol
// and range.
type cursorKey struct {
	proto  string
	ip     netip.Addr
	lo, hi uint16
	// ephemeral: the ephemeral range's, never forgotten (a forgotten
	// one would give a port just let go again).
	ephemeral bool
}

// cursors hold the port each range gave last (moby's portRange.last).
type cursors map[cursorKey]uint16

// maxCursors bounds the ranges remembered: past it, an arbitrary named
// range's is forgotten (its next search starts at its beginning again).
const maxCursors = 4096

// from is where k's next search starts: after the port it gave last, or
// at its start.
func (c cursors) from(k cursorKey) uint16 {
	last, ok := c[k]
	if !ok || last < k.lo || last >= k.hi {
		return k.lo
	}
	return last + 1
}

// gave records that k's search gave p.
func (c cursors) gave(k cursorKey, p uint16) {
	if _, ok := c[k]; !ok && len(c) >= maxCursors {
		for old := range c {
			if !old.ephemeral {
				delete(c, old)
				break
			}
		}
	}
	c[k] = p
}

// picker is what one Hold's searches share: the cursors, the ports held
// already (skipped without a bind), and the ephemeral range, read once.
type picker struct {
	next cursors
	held map[network.HostPort]int
	eph  *portSpan // nil until read; hi 0: not readable
}

// taken says whether berth holds proto's port p on ip, or on every
// address of ip's family: a bind would fail, so the search skips it.
func (pk *picker) taken(proto string, ip netip.Addr, p uint16) bool {
	if _, ok := pk.held[network.HostPort{Proto: proto, HostIP: ip, Port: p}]; ok {
		return true
	}
	unspec := netip.IPv4Unspecified()
	if ip.Is6() {
		unspec = netip.IPv6Unspecified()
	}
	_, ok := pk.held[network.HostPort{Proto: proto, HostIP: unspec, Port: p}]
	return ok
}

// ephemeral is the ephemeral range of the calling thread's network
// namespace, and false where it cannot be read.
func (pk *picker) ephemeral() (portSpan, bool) {
	if pk.eph == nil {
		s := readEphemeralSpan()
		pk.eph = &s
	}
	return *pk.eph, pk.eph.hi != 0
}

// readEphemeralSpan reads ip_local_port_range and ip_local_reserved_ports
// (the calling thread's namespace's: /proc/sys/net is looked up by the
// opener's); hi is 0 when the range cannot be read. Reserved ports that
// cannot be parsed are not skipped, as moby ignores them.
func readEphemeralSpan() portSpan {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return portSpan{}
	}
	s, err := parsePortRange(string(b))
	if err != nil {
		return portSpan{}
	}
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_reserved_ports"); err == nil {
		s.reserved, _ = parseReservedPorts(string(b), s)
	}
	return s
}

// parsePortRange parses ip_local_port_range: "32768\t60999".
func parsePortRange(v string) (portSpan, error) {
	f := strings.Fields(v)
	if len(f) != 2 {
		return portSpan{}, fmt.Errorf("ip_local_port_range %q: want two ports", v)
	}
	lo, err1 := strconv.ParseUint(f[0], 10, 16)
	hi, err2 := strconv.ParseUint(f[1], 10, 16)
	if err1 != nil || err2 != nil || lo == 0 || hi < lo {
		return portSpan{}, fmt.Errorf("ip_local_port_range %q: not a range of ports", v)
	}
	return portSpan{lo: uint16(lo), hi: uint16(hi)}, nil
}

// parseReservedPorts parses ip_local_reserved_ports ("8080,9148" or
// "30000-32767", "" for none), keeping the ports inside s.
func parseReservedPorts(v string, s portSpan) (map[uint16]bool, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, nil
	}
	out := map[uint16]bool{}
	for entry := range strings.SplitSeq(v, ",") {
		first, last, isRange := strings.Cut(entry, "-")
		lo, err := strconv.ParseUint(first, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("ip_local_reserved_ports %q: %w", entry, err)
		}
		hi := lo
		if isRange {
			if hi, err = strconv.ParseUint(last, 10, 16); err != nil || hi < lo {
				return nil, fmt.Errorf("ip_local_reserved_ports %q: not a range of ports", entry)
			}
		}
		for p := max(lo, uint64(s.lo)); p <= min(hi, uint64(s.hi)); p++ {
			out[uint16(p)] = true
		}
	}
	return out, nil
}
