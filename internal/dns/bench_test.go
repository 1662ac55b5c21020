package dns

import (
	"testing"

	mdns "github.com/miekg/dns"
)

// BenchmarkAnswerPath is the resolver's CPU work per local query: decode,
// look up, build and encode the answer (no sockets).
func BenchmarkAnswerPath(b *testing.B) {
	names := newFakeNames()
	names.add("sb", "target", "", "10.0.0.2")
	packed, err := query("target", mdns.TypeA).Pack()
	if err != nil {
		b.Fatal(err)
	}
	out := make([]byte, 0, mdns.MaxMsgSize)
	b.ReportAllocs()
	for b.Loop() {
		q := new(mdns.Msg)
		if err := q.Unpack(packed); err != nil {
			b.Fatal(err)
		}
		resp := answerLocal(q, names, "sb", clientLimit(q, "udp"))
		if _, err := resp.PackBuffer(out); err != nil {
			b.Fatal(err)
		}
	}
}
