package dns

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"slices"
	"testing"

	mdns "github.com/miekg/dns"
)

// fastNames has one address of a family per name (so that answers have
// one order): IPv4-only names, a name with an IPv6 address only, and
// dual-stack ones.
func fastNames() *fakeNames {
	names := newFakeNames()
	names.add("sb", "web", "", "10.0.0.2")
	names.add("sb", "my-db_1", "", "10.0.0.3")
	names.add("sb", "web.frontend", "", "10.0.0.2")
	names.add("sb", "six", "", "fd00::6")
	names.add("sb", "dual", "", "fd00::5", "10.0.0.5")
	names.add("sb", "dual.frontend", "", "10.0.0.5", "fd00::5")
	return names
}

// generalAnswer is what the general path replies to pkt: nil for garbage
// and for questions it forwards.
func generalAnswer(t testing.TB, names Names, pkt []byte) []byte {
	q := new(mdns.Msg)
	if err := q.Unpack(pkt); err != nil || q.Response {
		return nil
	}
	resp := answerLocal(q, names, "sb", clientLimit(q, "udp"))
	if resp == nil {
		return nil
	}
	b, err := resp.Pack()
	if err != nil {
		t.Fatalf("pack the general answer: %v", err)
	}
	return b
}

// fastAnswer is what the fast path replies to pkt, nil when it leaves pkt
// to the general path.
func fastAnswer(names Names, pkt []byte) []byte {
	r := &Resolver{sandboxID: "sb", names: names, interned: map[string]string{}}
	var nameBuf [maxNameLen]byte
	out := make([]byte, arenaSize)
	n := r.answerFast(pkt, out, &nameBuf)
	if n == 0 {
		return nil
	}
	return out[:n]
}

func pack(t testing.TB, m *mdns.Msg) []byte {
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFastPathMatchesGeneralPath(t *testing.T) {
	names := fastNames()
	withEDNS := func(m *mdns.Msg, size uint16, do bool) *mdns.Msg { m.SetEdns0(size, do); return m }
	withCookie := func(m *mdns.Msg) *mdns.Msg {
		m.SetEdns0(1232, false)
		opt := m.IsEdns0()
		opt.Option = append(opt.Option, &mdns.EDNS0_COOKIE{Code: mdns.EDNS0COOKIE, Cookie: "0123456789abcdef"})
		return m
	}
	flags := func(m *mdns.Msg) *mdns.Msg {
		m.RecursionDesired, m.CheckingDisabled, m.AuthenticatedData = false, true, true
		return m
	}
	tests := []struct {
		name string
		q    *mdns.Msg
		fast bool // the fast path answers it
	}{
		{"A", query("web", mdns.TypeA), true},
		{"A any case", query("WeB", mdns.TypeA), true},
		{"A, hyphen and underscore", query("my-db_1", mdns.TypeA), true},
		{"A of name.network", query("web.frontend", mdns.TypeA), true},
		{"ANY", query("web", mdns.TypeANY), false},
		{"TXT", query("web", mdns.TypeTXT), false},
		{"AAAA of an IPv4-only name: no data", query("web", mdns.TypeAAAA), true},
		{"MX: no data", query("web", mdns.TypeMX), true},
		{"A of an IPv6-only name: no data", query("six", mdns.TypeA), true},
		{"AAAA of an IPv6-only name", query("six", mdns.TypeAAAA), true},
		{"A of a dual-stack name", query("dual", mdns.TypeA), true},
		{"AAAA of a dual-stack name", query("dual", mdns.TypeAAAA), true},
		{"AAAA any case", query("DUAL.Frontend", mdns.TypeAAAA), true},
		{"MX of a dual-stack name", query("dual", mdns.TypeMX), true},
		{"AAAA with EDNS0 4096 and DO", withEDNS(query("dual", mdns.TypeAAAA), 4096, true), true},
		{"AAAA with a cookie", withCookie(query("dual", mdns.TypeAAAA)), true},
		{"AAAA, RD off, CD and AD on", flags(query("dual", mdns.TypeAAAA)), true},
		{"AAAA not berth's", query("example.com", mdns.TypeAAAA), false},
		{"PTR of IPv6", query(reverse6("fd00::5"), mdns.TypePTR), false},
		{"EDNS0 512", withEDNS(query("web", mdns.TypeA), 512, false), true},
		{"EDNS0 below 512", withEDNS(query("web", mdns.TypeA), 100, false), true},
		{"EDNS0 4096 with DO", withEDNS(query("web", mdns.TypeA), 4096, true), true},
		{"EDNS0 with a cookie", withCookie(query("web", mdns.TypeA)), true},
		{"RD off, CD and AD on", flags(query("web", mdns.TypeA)), true},
		{"not berth's", query("example.com", mdns.TypeA), false},
		{"PTR", query("2.0.0.10.in-addr.arpa", mdns.TypePTR), false},
		{"opcode NOTIFY", func() *mdns.Msg { q := query("web", mdns.TypeA); q.Opcode = mdns.OpcodeNotify; return q }(), false},
		{"class CHAOS", func() *mdns.Msg { q := query("web", mdns.TypeA); q.Question[0].Qclass = mdns.ClassCHAOS; return q }(), false},
		{"two questions", func() *mdns.Msg {
			q := query("web", mdns.TypeA)
			q.Question = append(q.Question, q.Question[0])
			return q
		}(), false},
		{"an answer", func() *mdns.Msg { q := query("web", mdns.TypeA); q.Response = true; return q }(), false},
		{"an escaped dot", query(`we\.b`, mdns.TypeA), false},
		{"the root", query(".", mdns.TypeA), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkt := pack(t, tt.q)
			fast := fastAnswer(names, pkt)
			if (fast != nil) != tt.fast {
				t.Fatalf("fast path answered: %v, want %v", fast != nil, tt.fast)
			}
			if fast == nil {
				return
			}
			if general := generalAnswer(t, names, pkt); !bytes.Equal(fast, general) {
				t.Errorf("fast path and general path differ:\nfast    %s\ngeneral %s", hex.EncodeToString(fast), hex.EncodeToString(general))
			}
		})
	}
}

func TestFastPathSharedAliasGivesEveryAddressShuffled(t *testing.T) {
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
			fast := fastAnswer(names, pack(t, query("svc", qtype)))
			m := new(mdns.Msg)
			if err := m.Unpack(fast); err != nil {
				t.Fatalf("fast answer does not decode: %v", err)
			}
			got := summarize(m)
			if !slices.Equal(got.Answers, want) || got.Rcode != "NOERROR" || m.Id != 4242 || !m.Response || !m.RecursionAvailable {
				t.Fatalf("answer %+v (id %d), want %q", got, m.Id, want)
			}
			orders[m.Answer[0].String()] = true
		}
		if len(orders) < 2 {
			t.Errorf("50 %s answers all started with the same address; want them shuffled", mdns.TypeToString[qtype])
		}
	}
}

func TestFastPathLeavesTruncationToGeneralPath(t *testing.T) {
	names := crowdNames("sb")
	for _, qtype := range []uint16{mdns.TypeA, mdns.TypeAAAA} {
		if fast := fastAnswer(names, pack(t, query("crowd", qtype))); fast != nil {
			t.Errorf("fast path answered 100 %s records within 512 bytes (%d bytes); want it left to the general path", mdns.TypeToString[qtype], len(fast))
		}
		q := query("crowd", qtype)
		q.SetEdns0(4096, false)
		if fast := fastAnswer(names, pack(t, q)); fast == nil {
			t.Errorf("fast path declined 100 %s records with EDNS0 4096; they fit", mdns.TypeToString[qtype])
		}
	}
}

// staticNames answers every name with the same slice, as a Names that
// allocates nothing would.
type staticNames []netip.Addr

func (s staticNames) Resolve(string, string) ([]netip.Addr, bool) { return s, true }
func (staticNames) ResolveAddr(string, netip.Addr) (string, bool) { return "", false }
func (staticNames) ExternalAccess(string) bool                    { return true }

func TestFastPathAllocatesNothing(t *testing.T) {
	names := staticNames{netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("fd00::2"), netip.MustParseAddr("10.0.0.3")}
	r := &Resolver{sandboxID: "sb", names: names, interned: map[string]string{}}
	var nameBuf [maxNameLen]byte
	out := make([]byte, arenaSize)
	for _, qtype := range []uint16{mdns.TypeA, mdns.TypeAAAA, mdns.TypeMX} {
		pkt := pack(t, query("target", qtype))
		r.answerFast(pkt, out, &nameBuf) // interns the name
		allocs := testing.AllocsPerRun(100, func() {
			if r.answerFast(pkt, out, &nameBuf) == 0 {
				t.Fatal("fast path declined")
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations a query, want none", mdns.TypeToString[qtype], allocs)
		}
	}
}

// FuzzFastPath: whatever the fast path answers, the general path answers
// with the same bytes.
func FuzzFastPath(f *testing.F) {
	for _, q := range []*mdns.Msg{query("web", mdns.TypeA), query("WEB.frontend", mdns.TypeAAAA),
		query("dual", mdns.TypeAAAA), query("Dual.frontend", mdns.TypeA), query("six", mdns.TypeAAAA), query("example.com", mdns.TypeA)} {
		f.Add(pack(f, q))
		q.SetEdns0(1232, true)
		f.Add(pack(f, q))
	}
	names := fastNames()
	f.Fuzz(func(t *testing.T, pkt []byte) {
		fast := fastAnswer(names, pkt)
		if fast == nil {
			return
		}
		if general := generalAnswer(t, names, pkt); !bytes.Equal(fast, general) {
			t.Errorf("query %x:\nfast    %x\ngeneral %x", pkt, fast, general)
		}
	})
}
