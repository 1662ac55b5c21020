package dns

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"slices"
	"testing"

	mdns "github.com/miekg/dns"
)

// fastNames has one address per name (so that answers have one order) and
// a name with an IPv6 address only.
func fastNames() *fakeNames {
	names := newFakeNames()
	names.add("sb", "web", "", "10.0.0.2")
	names.add("sb", "my-db_1", "", "10.0.0.3")
	names.add("sb", "web.frontend", "", "10.0.0.2")
	names.add("sb", "six", "", "fd00::6")
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
		{"AAAA: no data", query("web", mdns.TypeAAAA), true},
		{"MX: no data", query("web", mdns.TypeMX), true},
		{"A of an IPv6-only name: no data", query("six", mdns.TypeA), true},
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
	var want []string
	for i := 1; i <= 5; i++ {
		a := netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}).String()
		names.add("sb", "svc", "", a)
		want = append(want, "svc. 0 IN A "+a)
	}
	orders := map[string]bool{}
	for range 50 {
		fast := fastAnswer(names, pack(t, query("svc", mdns.TypeA)))
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
		t.Errorf("50 answers all started with the same address; want them shuffled")
	}
}

func TestFastPathLeavesTruncationToGeneralPath(t *testing.T) {
	names := newFakeNames()
	for i := 1; i <= 100; i++ {
		names.add("sb", "crowd", "", netip.AddrFrom4([4]byte{10, 1, 0, byte(i)}).String())
	}
	if fast := fastAnswer(names, pack(t, query("crowd", mdns.TypeA))); fast != nil {
		t.Errorf("fast path answered 100 addresses within 512 bytes (%d bytes); want it left to the general path", len(fast))
	}
	q := query("crowd", mdns.TypeA)
	q.SetEdns0(4096, false)
	if fast := fastAnswer(names, pack(t, q)); fast == nil {
		t.Errorf("fast path declined 100 addresses with EDNS0 4096; they fit")
	}
}

// FuzzFastPath: whatever the fast path answers, the general path answers
// with the same bytes.
func FuzzFastPath(f *testing.F) {
	for _, q := range []*mdns.Msg{query("web", mdns.TypeA), query("WEB.frontend", mdns.TypeAAAA), query("example.com", mdns.TypeA)} {
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
