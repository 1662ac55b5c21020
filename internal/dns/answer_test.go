package dns

import (
	"encoding/hex"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	mdns "github.com/miekg/dns"
)

// fakeNames is an in-memory Names: per sandbox, name → addresses.
type fakeNames struct {
	mu       sync.Mutex
	names    map[string]map[string][]netip.Addr
	ptr      map[string]map[netip.Addr]string
	internal map[string]bool
}

func newFakeNames() *fakeNames {
	return &fakeNames{names: map[string]map[string][]netip.Addr{}, ptr: map[string]map[netip.Addr]string{}, internal: map[string]bool{}}
}

func (f *fakeNames) add(sb, name string, ptr string, addrs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.names[sb] == nil {
		f.names[sb], f.ptr[sb] = map[string][]netip.Addr{}, map[netip.Addr]string{}
	}
	for _, s := range addrs {
		a := netip.MustParseAddr(s)
		f.names[sb][name] = append(f.names[sb][name], a)
		if ptr != "" {
			f.ptr[sb][a] = ptr
		}
	}
}

func (f *fakeNames) Resolve(sb, name string) ([]netip.Addr, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := f.names[sb][strings.ToLower(strings.TrimSuffix(name, "."))]
	return slices.Clone(a), len(a) > 0
}

func (f *fakeNames) ResolveAddr(sb string, a netip.Addr) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.ptr[sb][a]
	return n, ok
}

func (f *fakeNames) ExternalAccess(sb string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.internal[sb]
}

func query(name string, qtype uint16) *mdns.Msg {
	q := new(mdns.Msg).SetQuestion(mdns.Fqdn(name), qtype)
	q.Id = 4242
	return q
}

// summary is an answer in a comparable form: rcode, flags, sorted records.
type summary struct {
	Rcode     string
	Truncated bool
	Answers   []string
}

func summarize(m *mdns.Msg) *summary {
	if m == nil {
		return nil
	}
	s := &summary{Rcode: mdns.RcodeToString[m.Rcode], Truncated: m.Truncated}
	for _, rr := range m.Answer {
		s.Answers = append(s.Answers, strings.ReplaceAll(rr.String(), "\t", " "))
	}
	sort.Strings(s.Answers)
	return s
}

func TestAnswerLocal(t *testing.T) {
	names := newFakeNames()
	names.add("sb1", "web", "web.net", "10.0.0.2")
	names.add("sb1", "db", "", "10.0.0.3", "10.0.0.4")
	names.add("sb1", "dual", "dual.net", "10.0.0.5", "fd00::5")
	names.add("sb1", "six", "six.net", "fd00::6")
	names.add("sb1", "pair", "", "10.0.0.7", "fd00::7", "10.0.0.8", "fd00::8")
	tests := []struct {
		name string
		q    *mdns.Msg
		want *summary // nil: not berth's, forward it
	}{
		{"A of a name", query("web", mdns.TypeA), &summary{Rcode: "NOERROR", Answers: []string{"web. 0 IN A 10.0.0.2"}}},
		{"A any case", query("WEB", mdns.TypeA), &summary{Rcode: "NOERROR", Answers: []string{"WEB. 0 IN A 10.0.0.2"}}},
		{"A of a shared alias", query("db", mdns.TypeA), &summary{Rcode: "NOERROR", Answers: []string{"db. 0 IN A 10.0.0.3", "db. 0 IN A 10.0.0.4"}}},
		{"ANY of a name: forwarded, as Docker does", query("web", mdns.TypeANY), nil},
		{"TXT of a name: forwarded", query("web", mdns.TypeTXT), nil},
		{"SRV of a name: forwarded", query("web", mdns.TypeSRV), nil},
		{"AAAA of an IPv4-only name: no data", query("web", mdns.TypeAAAA), &summary{Rcode: "NOERROR"}},
		{"MX of a name: no data", query("web", mdns.TypeMX), &summary{Rcode: "NOERROR"}},
		{"A of a dual-stack name: IPv4 only", query("dual", mdns.TypeA), &summary{Rcode: "NOERROR", Answers: []string{"dual. 0 IN A 10.0.0.5"}}},
		{"AAAA of a dual-stack name", query("dual", mdns.TypeAAAA), &summary{Rcode: "NOERROR", Answers: []string{"dual. 0 IN AAAA fd00::5"}}},
		{"AAAA any case", query("DuAl", mdns.TypeAAAA), &summary{Rcode: "NOERROR", Answers: []string{"DuAl. 0 IN AAAA fd00::5"}}},
		{"MX of a dual-stack name: no data", query("dual", mdns.TypeMX), &summary{Rcode: "NOERROR"}},
		{"AAAA of an IPv6-only name", query("six", mdns.TypeAAAA), &summary{Rcode: "NOERROR", Answers: []string{"six. 0 IN AAAA fd00::6"}}},
		{"A of an IPv6-only name: no data, as moby", query("six", mdns.TypeA), &summary{Rcode: "NOERROR"}},
		{"AAAA of a shared dual-stack alias", query("pair", mdns.TypeAAAA), &summary{Rcode: "NOERROR", Answers: []string{"pair. 0 IN AAAA fd00::7", "pair. 0 IN AAAA fd00::8"}}},
		{"A of a shared dual-stack alias", query("pair", mdns.TypeA), &summary{Rcode: "NOERROR", Answers: []string{"pair. 0 IN A 10.0.0.7", "pair. 0 IN A 10.0.0.8"}}},
		{"PTR of an address", query("2.0.0.10.in-addr.arpa", mdns.TypePTR), &summary{Rcode: "NOERROR", Answers: []string{"2.0.0.10.in-addr.arpa. 0 IN PTR web.net."}}},
		{"PTR of an unknown address", query("9.0.0.10.in-addr.arpa", mdns.TypePTR), nil},
		{"PTR of a bad name", query("0.10.in-addr.arpa", mdns.TypePTR), nil},
		{"PTR of a short ip6.arpa name", query("1.0.0.0.ip6.arpa", mdns.TypePTR), nil},
		{"PTR of an IPv6 address", query(reverse6("fd00::5"), mdns.TypePTR), &summary{Rcode: "NOERROR", Answers: []string{reverse6("fd00::5") + " 0 IN PTR dual.net."}}},
		{"PTR of an IPv6 address, upper case", query(strings.ToUpper(reverse6("fd00::6")), mdns.TypePTR), &summary{Rcode: "NOERROR", Answers: []string{strings.ToUpper(reverse6("fd00::6")) + " 0 IN PTR six.net."}}},
		{"PTR of an unknown IPv6 address", query(reverse6("fd00::9"), mdns.TypePTR), nil},
		{"PTR of a two-digit ip6.arpa label", query("0"+reverse6("fd00::5"), mdns.TypePTR), nil},
		{"PTR of 31 ip6.arpa nibbles", query(reverse6("fd00::5")[2:], mdns.TypePTR), nil},
		{"A of another name", query("example.com", mdns.TypeA), nil},
		{"AAAA of another name", query("example.com", mdns.TypeAAAA), nil},
		{"class CHAOS", func() *mdns.Msg { q := query("web", mdns.TypeA); q.Question[0].Qclass = mdns.ClassCHAOS; return q }(), nil},
		{"no question", func() *mdns.Msg { q := query("web", mdns.TypeA); q.Question = nil; return q }(), &summary{Rcode: "FORMERR"}},
		{"two questions", func() *mdns.Msg {
			q := query("web", mdns.TypeA)
			q.Question = append(q.Question, q.Question[0])
			return q
		}(), &summary{Rcode: "FORMERR"}},
		{"opcode UPDATE", func() *mdns.Msg { q := query("web", mdns.TypeA); q.Opcode = mdns.OpcodeUpdate; return q }(), &summary{Rcode: "NOTIMP"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := answerLocal(tt.q, names, "sb1", mdns.MinMsgSize)
			if diff := cmp.Diff(tt.want, summarize(got)); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			if got != nil && (got.Id != tt.q.Id || !got.Response) {
				t.Errorf("answer has ID %d, response %v; want %d, true", got.Id, got.Response, tt.q.Id)
			}
		})
	}
	if got := answerLocal(query("web", mdns.TypeA), names, "other-sandbox", mdns.MinMsgSize); got != nil {
		t.Errorf("another sandbox got %v for web, want nothing", got)
	}
}

// crowdNames has "crowd" with 100 addresses of each family: either answer
// is over 512 bytes and under 4096.
func crowdNames(sb string) *fakeNames {
	names := newFakeNames()
	for i := 1; i <= 100; i++ {
		names.add(sb, "crowd", "", netip.AddrFrom4([4]byte{10, 1, 0, byte(i)}).String(),
			netip.AddrFrom16([16]byte{0: 0xfd, 15: byte(i)}).String())
	}
	return names
}

func TestAnswerLocalTruncatesToClientLimit(t *testing.T) {
	names := crowdNames("sb")
	for _, qtype := range []uint16{mdns.TypeA, mdns.TypeAAAA} {
		t.Run(mdns.TypeToString[qtype], func(t *testing.T) {
			q := query("crowd", qtype)
			small := answerLocal(q, names, "sb", clientLimit(q, "udp"))
			if !small.Truncated || small.Len() > mdns.MinMsgSize {
				t.Errorf("UDP answer: truncated %v, %d bytes; want TC set within %d", small.Truncated, small.Len(), mdns.MinMsgSize)
			}
			full := answerLocal(q, names, "sb", clientLimit(q, "tcp"))
			if full.Truncated || len(full.Answer) != 100 {
				t.Errorf("TCP answer: truncated %v, %d records; want all 100", full.Truncated, len(full.Answer))
			}
			q.SetEdns0(4096, false)
			edns := answerLocal(q, names, "sb", clientLimit(q, "udp"))
			if edns.Truncated || len(edns.Answer) != 100 || edns.IsEdns0() == nil {
				t.Errorf("EDNS0 answer: truncated %v, %d records, OPT %v; want all 100 with OPT", edns.Truncated, len(edns.Answer), edns.IsEdns0())
			}
			for _, rr := range full.Answer {
				if rr.Header().Rrtype != qtype {
					t.Fatalf("answer holds %v, want only %s records", rr, mdns.TypeToString[qtype])
				}
			}
		})
	}
}

// TestAnswerNameShufflesEachFamily: a shared alias with addresses of both
// families answers each type with all of that family's addresses, and
// only those, in changing order.
func TestAnswerNameShufflesEachFamily(t *testing.T) {
	names := newFakeNames()
	want := map[uint16][]string{}
	for i := 1; i <= 5; i++ {
		a4, a6 := netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), netip.AddrFrom16([16]byte{0: 0xfd, 15: byte(i)})
		names.add("sb", "svc", "", a4.String(), a6.String())
		want[mdns.TypeA] = append(want[mdns.TypeA], "svc. 0 IN A "+a4.String())
		want[mdns.TypeAAAA] = append(want[mdns.TypeAAAA], "svc. 0 IN AAAA "+a6.String())
	}
	for qtype, want := range want {
		orders := map[string]bool{}
		for range 50 {
			resp := answerLocal(query("svc", qtype), names, "sb", mdns.MinMsgSize)
			if got := summarize(resp); !slices.Equal(got.Answers, want) {
				t.Fatalf("%s svc = %q, want %q", mdns.TypeToString[qtype], got.Answers, want)
			}
			orders[resp.Answer[0].String()] = true
		}
		if len(orders) < 2 {
			t.Errorf("50 %s answers all started with the same address; want them shuffled", mdns.TypeToString[qtype])
		}
	}
}

// reverse6 is the ip6.arpa name of the IPv6 address s, written out
// independently of parseReverse.
func reverse6(s string) string {
	b := netip.MustParseAddr(s).As16()
	h := hex.EncodeToString(b[:])
	var sb strings.Builder
	for i := len(h) - 1; i >= 0; i-- {
		sb.WriteByte(h[i])
		sb.WriteByte('.')
	}
	return sb.String() + "ip6.arpa."
}

func TestParseReverse(t *testing.T) {
	for in, want := range map[string]string{
		"4.3.2.1.in-addr.arpa.":  "1.2.3.4",
		"4.3.2.1.IN-ADDR.ARPA.":  "1.2.3.4",
		"4.3.2.1.in-addr.arpa":   "1.2.3.4",
		"3.2.1.in-addr.arpa.":    "",
		"5.4.3.2.1.in-addr.arpa": "",
		"x.3.2.1.in-addr.arpa.":  "",
		"256.3.2.1.in-addr.arpa": "",
		"4.3.2.1.ip6.arpa.":      "",
		"example.com.":           "",
		"in-addr.arpa.":          "",
		"ip6.arpa.":              "",
		"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.": "fd00::1",
		"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.D.F.IP6.ARPA.": "fd00::1",
		"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa":  "fd00::1",
		"b.a.9.8.7.6.5.4.3.2.1.0.f.e.d.c.b.a.9.8.7.6.5.4.3.2.1.0.f.e.d.c.ip6.arpa.": "cdef:123:4567:89ab:cdef:123:4567:89ab",
		"0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.": "::",
		// malformed: too few or too many nibbles, two-digit labels, not hex,
		// an empty label, a missing dot
		"0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.":       "",
		"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.":   "",
		"10.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.":    "",
		"g.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.":     "",
		"1..0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.":      "",
		"1.00.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.":      "",
		"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.in-addr.arpa.": "",
	} {
		a, ok := parseReverse(in)
		got := ""
		if ok {
			got = a.String()
		}
		if got != want {
			t.Errorf("parseReverse(%q) = %q, want %q", in, got, want)
		}
	}
}
