package dns

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	mdns "github.com/miekg/dns"
)

// upstream is a fake upstream server on loopback UDP and TCP (the same port).
type upstream struct {
	addr  netip.AddrPort
	mu    sync.Mutex
	seen  []string            // "udp example.test." …
	ports map[uint16]struct{} // the client ports UDP queries came from
}

// startUpstream serves: example.test → 203.0.113.10; nx.test → NXDOMAIN;
// big.test → truncated over UDP, 100 addresses over TCP; huge.test → 300
// addresses (over 4 KiB) over either; *.echo.test → an A record of the
// name; everything else → the rcode given (SERVFAIL for a broken server).
func startUpstream(t testing.TB, otherwise int) *upstream {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	l, err := net.Listen("tcp4", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)).String())
	if err != nil {
		pc.Close()
		t.Fatal(err)
	}
	u := &upstream{addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)), ports: map[uint16]struct{}{}}
	for _, srv := range []*mdns.Server{
		{PacketConn: pc, Handler: u.handler("udp", otherwise)},
		{Listener: l, Handler: u.handler("tcp", otherwise)},
	} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		t.Cleanup(func() { srv.Shutdown() })
	}
	return u
}

func (u *upstream) handler(proto string, otherwise int) mdns.HandlerFunc {
	return func(w mdns.ResponseWriter, q *mdns.Msg) {
		name := q.Question[0].Name
		u.mu.Lock()
		u.seen = append(u.seen, proto+" "+name)
		if proto == "udp" {
			u.ports[uint16(w.RemoteAddr().(*net.UDPAddr).Port)] = struct{}{}
		}
		u.mu.Unlock()
		resp := new(mdns.Msg).SetReply(q)
		switch name {
		case "example.test.":
			resp.Answer = append(resp.Answer, aRecord(name, "203.0.113.10"))
		case "nx.test.":
			resp.Rcode = mdns.RcodeNameError
		case "big.test.":
			if proto == "udp" {
				resp.Truncated = true
				break
			}
			for i := 1; i <= 100; i++ {
				resp.Answer = append(resp.Answer, aRecord(name, netip.AddrFrom4([4]byte{198, 18, 0, byte(i)}).String()))
			}
		case "huge.test.":
			for i := range 300 {
				resp.Answer = append(resp.Answer, aRecord(name, netip.AddrFrom4([4]byte{198, 18, byte(i / 250), byte(i%250 + 1)}).String()))
			}
		default:
			if strings.HasSuffix(name, ".echo.test.") {
				resp.Answer = append(resp.Answer, aRecord(name, "203.0.113.20"))
				break
			}
			resp.Rcode = otherwise
		}
		w.WriteMsg(resp)
	}
}

// clientPorts is how many UDP source ports the upstream saw queries from.
func (u *upstream) clientPorts() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.ports)
}

func (u *upstream) queries() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.seen...)
}

func aRecord(name, addr string) *mdns.A {
	return &mdns.A{Hdr: mdns.RR_Header{Name: name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 60}, A: net.ParseIP(addr)}
}

// loopbackListen binds the resolver on 127.0.0.1 ports of the test's own
// namespace, standing in for 127.0.0.11:53 inside a sandbox.
func loopbackListen(_ testing.TB, bound *netip.AddrPort) ListenFunc {
	return func(sb Sandbox) (*net.UDPConn, net.Listener, error) {
		sb.closeKept() // a ListenFunc owns them
		// The UDP port the kernel picks may be a TCP socket's already
		// (the tests' own forwarded queries use random ports): pick again.
		for try := 0; ; try++ {
			udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				return nil, nil, err
			}
			at := udp.LocalAddr().(*net.UDPAddr).AddrPort()
			tcp, err := net.Listen("tcp4", at.String())
			if err != nil {
				udp.Close()
				if errors.Is(err, syscall.EADDRINUSE) && try < 20 {
					continue
				}
				return nil, nil, err
			}
			*bound = at
			return udp, tcp, nil
		}
	}
}

// startResolver runs a manager with one sandbox "sb1" whose resolver
// forwards to ups; it returns the resolver's address.
func startResolver(t *testing.T, names Names, ups ...netip.AddrPort) (*Manager, netip.AddrPort) {
	t.Helper()
	var at netip.AddrPort
	// A long upstream timeout only ends a hang: a third of it passes
	// before a query is sent again, so that an answer late on a loaded
	// machine does not add a query to what the tests count upstream.
	m := NewManager(Config{Names: names, Listen: loopbackListen(t, &at), Timeout: 30 * time.Second})
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close manager: %v", err)
		}
	})
	if err := m.Start(Sandbox{ID: "sb1", Path: "/unused", Upstreams: ups}); err != nil {
		t.Fatal(err)
	}
	return m, at
}

// ask sends q over proto and returns the answer; the client timeout only
// keeps a broken resolver from hanging the test.
func ask(t *testing.T, proto string, at netip.AddrPort, q *mdns.Msg) *mdns.Msg {
	t.Helper()
	c := &mdns.Client{Net: proto, Timeout: time.Minute}
	resp, _, err := c.Exchange(q, at.String())
	if err != nil {
		t.Fatalf("%s query %s: %v", proto, q.Question[0].Name, err)
	}
	return resp
}

func TestResolverAnswersAndForwards(t *testing.T) {
	names := newFakeNames()
	names.add("sb1", "web", "web.net", "10.0.0.2")
	up := startUpstream(t, mdns.RcodeNameError)
	_, at := startResolver(t, names, up.addr)
	for _, proto := range []string{"udp", "tcp"} {
		if got := summarize(ask(t, proto, at, query("web", mdns.TypeA))); got.Rcode != "NOERROR" || len(got.Answers) != 1 {
			t.Errorf("%s web = %+v, want its one address", proto, got)
		}
		got := summarize(ask(t, proto, at, query("example.test", mdns.TypeA)))
		if got.Rcode != "NOERROR" || len(got.Answers) != 1 || got.Answers[0] != "example.test. 60 IN A 203.0.113.10" {
			t.Errorf("%s example.test = %+v, want the upstream's answer", proto, got)
		}
		if got := summarize(ask(t, proto, at, query("nx.test", mdns.TypeA))); got.Rcode != "NXDOMAIN" {
			t.Errorf("%s nx.test = %+v, want NXDOMAIN passed through", proto, got)
		}
	}
	for _, q := range up.queries() {
		if q == "udp web." || q == "tcp web." {
			t.Errorf("berth's own name went upstream: %q", q)
		}
	}
}

// TestResolverAnswersIPv6: over UDP and TCP, AAAA of a dual-stack name
// gets its IPv6 address and A only its IPv4 one, AAAA of an IPv4-only
// name gets an empty NOERROR without going upstream, and a reverse lookup
// of the IPv6 address gets "name.network."; a malformed ip6.arpa name is
// forwarded.
func TestResolverAnswersIPv6(t *testing.T) {
	names := newFakeNames()
	names.add("sb1", "web", "web.net", "10.0.0.2")
	names.add("sb1", "dual", "dual.net", "10.0.0.5", "fd00::5")
	up := startUpstream(t, mdns.RcodeNameError)
	_, at := startResolver(t, names, up.addr)
	bad := "0" + reverse6("fd00::5") // a two-digit first label
	for _, proto := range []string{"udp", "tcp"} {
		for _, tt := range []struct {
			q    *mdns.Msg
			want summary
		}{
			{query("dual", mdns.TypeAAAA), summary{Rcode: "NOERROR", Answers: []string{"dual. 0 IN AAAA fd00::5"}}},
			{query("dual", mdns.TypeA), summary{Rcode: "NOERROR", Answers: []string{"dual. 0 IN A 10.0.0.5"}}},
			{query("web", mdns.TypeAAAA), summary{Rcode: "NOERROR"}},
			{query(reverse6("fd00::5"), mdns.TypePTR), summary{Rcode: "NOERROR", Answers: []string{reverse6("fd00::5") + " 0 IN PTR dual.net."}}},
			{query(bad, mdns.TypePTR), summary{Rcode: "NXDOMAIN"}},
		} {
			got := summarize(ask(t, proto, at, tt.q))
			if diff := cmp.Diff(&tt.want, got); diff != "" {
				t.Errorf("%s %s %s (-want +got):\n%s", proto, mdns.TypeToString[tt.q.Question[0].Qtype], tt.q.Question[0].Name, diff)
			}
		}
	}
	if qs, want := up.queries(), []string{"udp " + bad, "tcp " + bad}; !slices.Equal(qs, want) {
		t.Errorf("upstream saw %q, want only the malformed ip6.arpa name, %q", qs, want)
	}
}

// TestResolverTruncatesAAAAAsA: a long AAAA answer is truncated over
// plain UDP, whole with EDNS0 and over TCP, as A is.
func TestResolverTruncatesAAAAAsA(t *testing.T) {
	_, at := startResolver(t, crowdNames("sb1"))
	q := query("crowd", mdns.TypeAAAA)
	if got := ask(t, "udp", at, q); !got.Truncated {
		t.Errorf("UDP: %d records, not truncated; want TC", len(got.Answer))
	}
	if got := ask(t, "tcp", at, q); got.Truncated || len(got.Answer) != 100 {
		t.Errorf("TCP: truncated %v, %d records; want all 100", got.Truncated, len(got.Answer))
	}
	q.SetEdns0(4096, false)
	if got := ask(t, "udp", at, q); got.Truncated || len(got.Answer) != 100 || got.IsEdns0() == nil {
		t.Errorf("UDP with EDNS0 4096: truncated %v, %d records, OPT %v; want all 100 with OPT", got.Truncated, len(got.Answer), got.IsEdns0())
	}
}

func TestResolverRetriesTruncatedOverTCP(t *testing.T) {
	up := startUpstream(t, mdns.RcodeNameError)
	_, at := startResolver(t, newFakeNames(), up.addr)
	q := query("big.test", mdns.TypeA)
	q.SetEdns0(8192, false)
	got := ask(t, "udp", at, q)
	if got.Truncated || len(got.Answer) != 100 {
		t.Errorf("big.test over UDP with EDNS0 8192: truncated %v, %d records; want all 100", got.Truncated, len(got.Answer))
	}
	if qs := up.queries(); len(qs) != 2 || qs[0] != "udp big.test." || qs[1] != "tcp big.test." {
		t.Errorf("upstream saw %q, want a UDP then a TCP query", qs)
	}
	small := ask(t, "udp", at, query("big.test", mdns.TypeA))
	small.Compress = true // as it came on the wire
	if !small.Truncated || small.Len() > mdns.MinMsgSize {
		t.Errorf("big.test over plain UDP: truncated %v, %d bytes; want TC within 512", small.Truncated, small.Len())
	}
}

func TestResolverTriesNextUpstream(t *testing.T) {
	broken := startUpstream(t, mdns.RcodeServerFailure)
	good := startUpstream(t, mdns.RcodeNameError)
	// A port where nothing listens: the kernel refuses at once.
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	pc.Close()
	_, at := startResolver(t, newFakeNames(), dead, broken.addr, good.addr)
	if got := summarize(ask(t, "udp", at, query("other.test", mdns.TypeA))); got.Rcode != "NXDOMAIN" {
		t.Errorf("other.test = %+v, want the third upstream's NXDOMAIN", got)
	}
	if len(broken.queries()) != 1 || len(good.queries()) != 1 {
		t.Errorf("broken saw %q, good saw %q; want one query each", broken.queries(), good.queries())
	}
}

func TestResolverWithoutWayOutAnswersServfailAtOnce(t *testing.T) {
	up := startUpstream(t, mdns.RcodeNameError)
	names := newFakeNames()
	names.add("sb1", "peer", "", "10.0.0.5")
	names.internal["sb1"] = true
	_, at := startResolver(t, names, up.addr)
	for _, proto := range []string{"udp", "tcp"} {
		if got := summarize(ask(t, proto, at, query("example.test", mdns.TypeA))); got.Rcode != "SERVFAIL" {
			t.Errorf("%s example.test from an internal network = %+v, want SERVFAIL", proto, got)
		}
		if got := summarize(ask(t, proto, at, query("peer", mdns.TypeA))); got.Rcode != "NOERROR" || len(got.Answers) != 1 {
			t.Errorf("%s peer on an internal network = %+v, want its address", proto, got)
		}
	}
	if qs := up.queries(); len(qs) != 0 {
		t.Errorf("an internal sandbox's queries reached the upstream: %q", qs)
	}
	_, at2 := startResolver(t, newFakeNames())
	if got := summarize(ask(t, "udp", at2, query("example.test", mdns.TypeA))); got.Rcode != "SERVFAIL" {
		t.Errorf("with no upstreams: %+v, want SERVFAIL", got)
	}
}

func TestManagerStartIsIdempotentAndStopCloses(t *testing.T) {
	names := newFakeNames()
	names.add("sb1", "web", "", "10.0.0.2")
	up := startUpstream(t, mdns.RcodeNameError)
	m, at := startResolver(t, names)
	if got := summarize(ask(t, "udp", at, query("example.test", mdns.TypeA))); got.Rcode != "SERVFAIL" {
		t.Fatalf("before upstreams: %+v, want SERVFAIL", got)
	}
	// A second Start only updates the upstreams; it binds nothing new.
	if err := m.Start(Sandbox{ID: "sb1", Upstreams: []netip.AddrPort{up.addr}}); err != nil {
		t.Fatal(err)
	}
	if got := summarize(ask(t, "udp", at, query("example.test", mdns.TypeA))); got.Rcode != "NOERROR" {
		t.Errorf("after the upstreams changed: %+v, want an answer", got)
	}
	if !m.Running("sb1") {
		t.Fatal("Running(sb1) = false")
	}
	if err := m.Stop("sb1"); err != nil {
		t.Fatal(err)
	}
	if err := m.Stop("sb1"); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if m.Running("sb1") {
		t.Error("Running(sb1) after Stop")
	}
	if c, err := net.Dial("tcp4", at.String()); err == nil {
		c.Close()
		t.Errorf("TCP %s still accepts after Stop", at)
	}
}

// TestResolverNdotsKeepsSingleLabelsIn: with ndots set in the container's
// resolv.conf, an A or AAAA question for a single-label name berth does
// not know gets an empty NOERROR, not forwarded (moby's resolver); other
// names and types still go upstream, and berth's names still answer.
func TestResolverNdotsKeepsSingleLabelsIn(t *testing.T) {
	names := newFakeNames()
	names.add("sb1", "web", "", "10.0.0.2")
	up := startUpstream(t, mdns.RcodeNameError)
	m, at := startResolver(t, names, up.addr)
	if got := summarize(ask(t, "udp", at, query("single", mdns.TypeA))); got.Rcode != "NXDOMAIN" {
		t.Fatalf("single without ndots = %+v, want the upstream's NXDOMAIN", got)
	}
	if err := m.Start(Sandbox{ID: "sb1", Path: "/unused", Upstreams: []netip.AddrPort{up.addr}, NdotsSet: true}); err != nil {
		t.Fatal(err)
	}
	for _, proto := range []string{"udp", "tcp"} {
		for _, qt := range []uint16{mdns.TypeA, mdns.TypeAAAA} {
			got := summarize(ask(t, proto, at, query("single", qt)))
			if got.Rcode != "NOERROR" || len(got.Answers) != 0 {
				t.Errorf("%s %s single with ndots = %+v, want an empty NOERROR", proto, mdns.TypeToString[qt], got)
			}
		}
		if got := summarize(ask(t, proto, at, query("web", mdns.TypeA))); len(got.Answers) != 1 {
			t.Errorf("%s web with ndots = %+v, want its address", proto, got)
		}
		if got := summarize(ask(t, proto, at, query("example.test", mdns.TypeA))); len(got.Answers) != 1 {
			t.Errorf("%s example.test with ndots = %+v, want the upstream's answer", proto, got)
		}
	}
	if got := summarize(ask(t, "udp", at, query("single", mdns.TypeTXT))); got.Rcode != "NXDOMAIN" {
		t.Errorf("TXT single with ndots = %+v, want it forwarded (NXDOMAIN)", got)
	}
	if n := strings.Count(strings.Join(up.queries(), "\n"), "single."); n != 2 {
		t.Errorf("upstream saw single %d times (%q), want twice: before ndots, and the TXT", n, up.queries())
	}
}

// TestResolverCompressesForwardedAnswers: a forwarded answer that fits the
// client's EDNS0 size uncompressed still goes out compressed (Docker's),
// which halves a long list of records.
func TestResolverCompressesForwardedAnswers(t *testing.T) {
	up := startUpstream(t, mdns.RcodeNameError)
	_, at := startResolver(t, newFakeNames(), up.addr)
	q := query("huge.test", mdns.TypeA)
	q.SetEdns0(65000, false)
	c := &mdns.Client{Net: "udp", Timeout: time.Minute, UDPSize: 65000}
	resp, _, err := c.Exchange(q, at.String())
	if err != nil {
		t.Fatal(err)
	}
	raw := resp.Copy()
	raw.Compress = false
	compressed := resp.Copy()
	compressed.Compress = true
	if len(resp.Answer) != 300 {
		t.Fatalf("%d records, want 300", len(resp.Answer))
	}
	// The size on the wire is not kept by Exchange; re-ask with a raw socket.
	conn, err := net.Dial("udp4", at.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	wire, _ := q.Pack()
	conn.Write(wire)
	buf := make([]byte, 65535)
	conn.SetReadDeadline(time.Now().Add(time.Minute))
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != compressed.Len() || n >= raw.Len() {
		t.Errorf("answer is %d bytes; compressed %d, uncompressed %d: want it compressed", n, compressed.Len(), raw.Len())
	}
}

// TestMalformedQueryGetsFormErr: a query whose header reads but whose
// question does not (a label past the end, a compression loop) is answered
// FORMERR under its ID, as miekg's server behind Docker answers it; a
// datagram shorter than a header, or a response, gets nothing.
func TestMalformedQueryGetsFormErr(t *testing.T) {
	_, at := startResolver(t, staticNames{})
	conn, err := net.Dial("udp4", at.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	header := func(id uint16, flags byte) []byte {
		return []byte{byte(id >> 8), byte(id), flags, 0, 0, 1, 0, 0, 0, 0, 0, 0}
	}
	ask := func(pkt []byte) []byte {
		t.Helper()
		conn.Write(pkt)
		buf := make([]byte, 512)
		conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, err := conn.Read(buf)
		if err != nil {
			return nil
		}
		return buf[:n]
	}
	for name, pkt := range map[string][]byte{
		"a label past the end": append(header(0x1234, 0x01), 9, 'a', 'b'),
		"a compression loop":   append(header(0x1234, 0x01), 0xc0, 12, 0, 1, 0, 1),
	} {
		got := ask(pkt)
		want := []byte{0x12, 0x34, 0x80, mdns.RcodeFormatError, 0, 0, 0, 0, 0, 0, 0, 0}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: answered % x, want FORMERR % x", name, got, want)
		}
	}
	for name, pkt := range map[string][]byte{
		"shorter than a header": {0x12, 0x34, 0x01},
		"a response":            append(header(0x1234, 0x81), 9, 'a'),
	} {
		if got := ask(pkt); got != nil {
			t.Errorf("%s: answered % x, want nothing", name, got)
		}
	}
	// The resolver still answers.
	if got := ask(append(header(7, 0x01), 0xc0, 12)); len(got) != headerLen {
		t.Errorf("after the garbage, a malformed query got % x", got)
	}
}

// TestUnpackableAnswerGetsServfail: a reverse lookup whose answer cannot
// be packed (a container name of 70 characters makes a label over 63
// bytes) is answered SERVFAIL at once, as moby's resolver does, over UDP
// and TCP; it went unanswered into the client's timeout.
func TestUnpackableAnswerGetsServfail(t *testing.T) {
	long := strings.Repeat("n", 70)
	names := newFakeNames()
	names.add("sb1", long, long+".net", "10.0.0.7")
	_, at := startResolver(t, names)
	for _, proto := range []string{"udp", "tcp"} {
		if got := summarize(ask(t, proto, at, query("7.0.0.10.in-addr.arpa", mdns.TypePTR))); got.Rcode != "SERVFAIL" || len(got.Answers) != 0 {
			t.Errorf("%s PTR of a 70-character name: %+v, want SERVFAIL", proto, got)
		}
	}
}
