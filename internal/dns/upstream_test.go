package dns

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

func testForwarder(t *testing.T, timeout time.Duration) *forwarder {
	f := newForwarder(timeout, slog.New(slog.DiscardHandler))
	t.Cleanup(f.close)
	return f
}

// hangBound is the upstream timeout of tests that do not test the timeout:
// it only ends a hang. It is long because a third of it passes before a
// query is sent again: a datagram lost or an answer late on a loaded
// machine must cost a resend, not a SERVFAIL, nor a resend that changes
// what an upstream counts.
const hangBound = 30 * time.Second

// TestForwarderUsesASocketPerQuery: as Docker's resolver, each forwarded
// query leaves from a socket (a source port) of its own, which is closed
// once the query is answered (RFC 5452: the port is half of what a
// spoofed answer must guess).
func TestForwarderUsesASocketPerQuery(t *testing.T) {
	up := startUpstream(t, mdns.RcodeNameError)
	f := testForwarder(t, hangBound)
	const n = 300
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("q%d.echo.test.", i)
			resp := f.forward(context.Background(), query(name, mdns.TypeA), "udp", []netip.AddrPort{up.addr})
			if resp.Rcode != mdns.RcodeSuccess || len(resp.Answer) != 1 || resp.Answer[0].Header().Name != name || resp.Id != 4242 {
				errs <- fmt.Errorf("%s: got %v", name, resp)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Ports are reused by the kernel once freed, so a few may repeat.
	if got := up.clientPorts(); got < n*9/10 {
		t.Errorf("%d queries came from %d ports, want about one each", n, got)
	}
	if got := f.udp.sockets(); got != 0 {
		deadline := time.Now().Add(5 * time.Second)
		for f.udp.sockets() != 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond) // the readers see their sockets closed
		}
		if got = f.udp.sockets(); got != 0 {
			t.Errorf("%d sockets open after every query was answered, want 0", got)
		}
	}
}

func TestForwarderSendsAgainWhatWasLost(t *testing.T) {
	var mu sync.Mutex
	got := map[string]int{}
	// Drops the first two copies of each query, as a full socket buffer
	// on a busy host would, and answers the third.
	lossy := rawUpstream(t, func(q *mdns.Msg) []*mdns.Msg {
		mu.Lock()
		defer mu.Unlock()
		name := q.Question[0].Name
		if got[name]++; got[name] < resends {
			return nil
		}
		a := new(mdns.Msg).SetReply(q)
		a.Answer = append(a.Answer, aRecord(name, "203.0.113.40"))
		return []*mdns.Msg{a}
	})
	// A third of the timeout between sends: long enough that a busy
	// scheduler neither skips the third send nor makes it miss the deadline.
	f := testForwarder(t, 9*time.Second)
	resp := f.forward(context.Background(), query("lossy.test", mdns.TypeA), "udp", []netip.AddrPort{lossy})
	if s := summarize(resp); s.Rcode != "NOERROR" || len(s.Answers) != 1 {
		t.Errorf("after two lost datagrams: %+v, want the answer to the third", s)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := got["lossy.test."]; n != resends {
		t.Errorf("upstream got the query %d times, want %d", n, resends)
	}
	assertNothingPending(t, f)
}

// rawUpstream answers each query with what answers returns, datagram by
// datagram, from a plain UDP socket.
func rawUpstream(t *testing.T, answers func(q *mdns.Msg) []*mdns.Msg) netip.AddrPort {
	t.Helper()
	return rawUDP(t, func(b []byte) [][]byte {
		q := new(mdns.Msg)
		if q.Unpack(b) != nil {
			return nil
		}
		var out [][]byte
		for _, a := range answers(q) {
			p, _ := a.Pack()
			out = append(out, p)
		}
		return out
	})
}

// TestForwarderWaitsForASlowUpstream: with the default timeout, moby's
// 4 s, an upstream that takes 2.5 s to answer is waited for (it was a
// SERVFAIL at 2 s).
func TestForwarderWaitsForASlowUpstream(t *testing.T) {
	slow := rawUpstream(t, func(q *mdns.Msg) []*mdns.Msg {
		time.Sleep(2500 * time.Millisecond)
		a := new(mdns.Msg).SetReply(q)
		a.Answer = append(a.Answer, aRecord(q.Question[0].Name, "203.0.113.41"))
		return []*mdns.Msg{a}
	})
	f := testForwarder(t, DefaultTimeout)
	resp := f.forward(context.Background(), query("slow.test", mdns.TypeA), "udp", []netip.AddrPort{slow})
	if s := summarize(resp); s.Rcode != "NOERROR" || len(s.Answers) != 1 {
		t.Errorf("an upstream 2.5 s slow: %+v, want its answer", s)
	}
}

func TestForwarderMatchesAnswersByIDAndQuestion(t *testing.T) {
	forged := func(q *mdns.Msg) []*mdns.Msg {
		wrongQuestion := new(mdns.Msg).SetReply(q)
		wrongQuestion.Question[0].Name = "evil.test."
		wrongQuestion.Answer = append(wrongQuestion.Answer, aRecord("evil.test.", "192.0.2.66"))
		wrongID := new(mdns.Msg).SetReply(q)
		wrongID.Id = q.Id + 1
		wrongID.Answer = append(wrongID.Answer, aRecord(q.Question[0].Name, "192.0.2.66"))
		notAnAnswer := q.Copy()
		return []*mdns.Msg{wrongQuestion, wrongID, notAnAnswer}
	}
	honest := rawUpstream(t, func(q *mdns.Msg) []*mdns.Msg {
		real := new(mdns.Msg).SetReply(q)
		real.Answer = append(real.Answer, aRecord(q.Question[0].Name, "203.0.113.30"))
		return append(forged(q), real)
	})
	f := testForwarder(t, hangBound)
	resp := f.forward(context.Background(), query("www.example.test", mdns.TypeA), "udp", []netip.AddrPort{honest})
	if got := summarize(resp); got.Rcode != "NOERROR" || len(got.Answers) != 1 || got.Answers[0] != "www.example.test. 60 IN A 203.0.113.30" {
		t.Errorf("answer = %+v, want the real one after three that do not match", got)
	}

	// Only forgeries: the query times out and the client gets SERVFAIL.
	liar := rawUpstream(t, forged)
	f = testForwarder(t, 200*time.Millisecond)
	if got := summarize(f.forward(context.Background(), query("www.example.test", mdns.TypeA), "udp", []netip.AddrPort{liar})); got.Rcode != "SERVFAIL" {
		t.Errorf("with forged answers only: %+v, want SERVFAIL", got)
	}
	assertNothingPending(t, f)
}

func TestForwarderTimesOutAndForgets(t *testing.T) {
	silent := rawUpstream(t, func(*mdns.Msg) []*mdns.Msg { return nil })
	good := startUpstream(t, mdns.RcodeNameError)
	// The good upstream has the same timeout to answer in: not a short one.
	const timeout = 5 * time.Second
	f := testForwarder(t, timeout)
	start := time.Now()
	resp := f.forward(context.Background(), query("example.test", mdns.TypeA), "udp", []netip.AddrPort{silent, good.addr})
	if got := summarize(resp); got.Rcode != "NOERROR" || len(got.Answers) != 1 {
		t.Errorf("answer = %+v, want the second upstream's after the first timed out", got)
	}
	if took := time.Since(start); took < timeout {
		t.Errorf("answered in %v, before the silent upstream's timeout", took)
	}
	assertNothingPending(t, f)
}

func TestForwarderAsksOverTCPWhenUDPAnswerIsTooLarge(t *testing.T) {
	up := startUpstream(t, mdns.RcodeNameError)
	f := testForwarder(t, hangBound)
	q := query("huge.test", mdns.TypeA)
	q.SetEdns0(65000, false)
	resp := f.forward(context.Background(), q, "udp", []netip.AddrPort{up.addr})
	if resp.Rcode != mdns.RcodeSuccess || len(resp.Answer) != 300 {
		t.Errorf("huge.test: rcode %d, %d records; want all 300", resp.Rcode, len(resp.Answer))
	}
	if qs := up.queries(); len(qs) != 2 || qs[0] != "udp huge.test." || qs[1] != "tcp huge.test." {
		t.Errorf("upstream saw %q, want a UDP then a TCP query", qs)
	}
}

func TestForwarderCloseFailsQueriesInFlight(t *testing.T) {
	silent := rawUpstream(t, func(*mdns.Msg) []*mdns.Msg { return nil })
	f := newForwarder(time.Minute, slog.New(slog.DiscardHandler))
	done := make(chan *mdns.Msg)
	go func() {
		done <- f.forward(context.Background(), query("example.test", mdns.TypeA), "udp", []netip.AddrPort{silent})
	}()
	for f.udp.sockets() == 0 {
		time.Sleep(time.Millisecond)
	}
	f.close()
	select {
	case resp := <-done:
		if resp.Rcode != mdns.RcodeServerFailure {
			t.Errorf("after close: rcode %d, want SERVFAIL", resp.Rcode)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a query in flight still waits 30 s after close")
	}
}

func assertNothingPending(t *testing.T, f *forwarder) {
	t.Helper()
	f.udp.mu.Lock()
	defer f.udp.mu.Unlock()
	for s := range f.udp.live {
		s.mu.Lock()
		if n := len(s.pending); n > 0 {
			t.Errorf("socket to %s still holds %d queries", s.up, n)
		}
		s.mu.Unlock()
	}
}

func TestResolverStopDoesNotWaitForForwardsInFlight(t *testing.T) {
	silent := rawUpstream(t, func(*mdns.Msg) []*mdns.Msg { return nil })
	var at netip.AddrPort
	m := NewManager(Config{Names: newFakeNames(), Listen: loopbackListen(t, &at), Timeout: time.Hour})
	t.Cleanup(func() { m.Close() })
	if err := m.Start(Sandbox{ID: "sb1", Upstreams: []netip.AddrPort{silent}}); err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(at))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The query is sent again each second until it waits upstream: one
	// datagram may be lost on a loaded machine.
	var sent time.Time
	for deadline := time.Now().Add(30 * time.Second); pending(m.fwd) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no query waits upstream 30 s after it was sent")
		}
		if time.Since(sent) > time.Second {
			if _, err := c.Write(pack(t, query("example.test", mdns.TypeA))); err != nil {
				t.Fatal(err)
			}
			sent = time.Now()
		}
	}
	stopped := make(chan error)
	go func() { stopped <- m.Stop("sb1") }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("Stop: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Stop still waits 30 s later for a forward whose upstream timeout is an hour")
	}
	if n := pending(m.fwd); n != 0 {
		t.Errorf("%d queries still pending upstream after Stop", n)
	}
}

// pending is how many queries wait for upstream answers.
func pending(f *forwarder) int {
	f.udp.mu.Lock()
	defer f.udp.mu.Unlock()
	n := 0
	for s := range f.udp.live {
		s.mu.Lock()
		n += len(s.pending)
		s.mu.Unlock()
	}
	return n
}

// TestForwardSlotsArePerResolver: a resolver whose forwards in flight
// are all taken (a container flooding an upstream that never answers)
// gets REFUSED; another resolver's query still goes out, and gives its
// slots back when it ends (QA round 27: one pool for all made every
// container's lookups REFUSED).
func TestForwardSlotsArePerResolver(t *testing.T) {
	silent := rawUpstream(t, func(*mdns.Msg) []*mdns.Msg { return nil })
	f := testForwarder(t, hangBound)
	full := newSlots()
	for range maxForwards {
		full <- struct{}{}
	}
	got := make(chan *mdns.Msg, 1)
	f.start(context.Background(), full, query("a.test", mdns.TypeA), "udp", []netip.AddrPort{silent}, func(m *mdns.Msg) { got <- m })
	if m := <-got; m.Rcode != mdns.RcodeRefused {
		t.Errorf("a query of the flooding resolver: rcode %d, want REFUSED", m.Rcode)
	}
	if len(f.slots) != 0 {
		t.Errorf("a refused query holds %d of all slots", len(f.slots))
	}
	ctx, cancel := context.WithCancel(context.Background())
	other := newSlots()
	done := make(chan *mdns.Msg, 1)
	f.start(ctx, other, query("b.test", mdns.TypeA), "udp", []netip.AddrPort{silent}, func(m *mdns.Msg) { done <- m })
	if len(other) != 1 || len(f.slots) != 1 {
		t.Errorf("another resolver's query took %d of its slots and %d of all, want 1 and 1", len(other), len(f.slots))
	}
	cancel()
	<-done
	if len(other) != 0 || len(f.slots) != 0 {
		t.Errorf("after it ended: %d of its slots and %d of all still taken", len(other), len(f.slots))
	}
}

// rawUDP answers each datagram on a loopback UDP socket with the
// datagrams answer returns (none: no answer).
func rawUDP(t *testing.T, answer func(q []byte) [][]byte) netip.AddrPort {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			for _, b := range answer(buf[:n]) {
				conn.WriteToUDPAddrPort(b, from)
			}
		}
	}()
	return conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// TestErrorAnswerWithoutQuestion: an upstream's error answer with a bare
// header (a FORMERR from a server without EDNS, RFC 6891; a REFUSED) is
// taken by its ID, as moby's client takes answers: the FORMERR goes to
// the client at once, with the question put back, and a REFUSED moves
// on to the next upstream at once. Both were dropped as not matching,
// and the query waited out the upstream's timeout (2 s here).
func TestErrorAnswerWithoutQuestion(t *testing.T) {
	formErr := rawUpstream(t, func(q *mdns.Msg) []*mdns.Msg {
		a := new(mdns.Msg)
		a.Id, a.Response, a.Opcode, a.Rcode = q.Id, true, q.Opcode, mdns.RcodeFormatError
		return []*mdns.Msg{a}
	})
	// An error answer that were not taken would be waited out (hangBound)
	// and end in SERVFAIL, not in the rcode checked; the context, which
	// the forwarder reads before it moves on to the next upstream, ends a
	// wait for the first upstream with SERVFAIL too (it is far longer than
	// an answer on loopback takes, and far shorter than hangBound).
	f := testForwarder(t, hangBound)
	ctx, cancel := context.WithTimeout(context.Background(), hangBound/3)
	defer cancel()
	q := query("www.example.test", mdns.TypeA)
	q.SetEdns0(1232, false)
	resp := f.forward(ctx, q, "udp", []netip.AddrPort{formErr})
	if resp.Rcode != mdns.RcodeFormatError || len(resp.Question) != 1 {
		t.Errorf("got %s with %d questions, want the upstream's FORMERR", mdns.RcodeToString[resp.Rcode], len(resp.Question))
	}

	bare := rawUDP(t, func(q []byte) [][]byte {
		b := append([]byte(nil), q[:12]...)
		b[2] |= 0x80
		b[3] = (b[3] &^ 0x0f) | mdns.RcodeRefused
		b[4], b[5] = 0, 0 // no question
		return [][]byte{b}
	})
	good := startUpstream(t, mdns.RcodeNameError)
	resp = f.forward(ctx, query("nx.test", mdns.TypeA), "udp", []netip.AddrPort{bare, good.addr})
	if resp.Rcode != mdns.RcodeNameError {
		t.Errorf("got %s, want the second upstream's NXDOMAIN", mdns.RcodeToString[resp.Rcode])
	}

	// An answer without a question that says NOERROR is not taken: it
	// answers nothing.
	empty := rawUDP(t, func(q []byte) [][]byte {
		b := append([]byte(nil), q[:12]...)
		b[2] |= 0x80
		b[4], b[5] = 0, 0
		return [][]byte{b}
	})
	// The first upstream times out (2 s) and the second answers: NOERROR
	// would say the empty answer was taken.
	short := testForwarder(t, 2*time.Second)
	resp = short.forward(context.Background(), query("nx.test", mdns.TypeA), "udp", []netip.AddrPort{empty, good.addr})
	if resp.Rcode != mdns.RcodeNameError {
		t.Errorf("a question-less NOERROR: got %s, want it ignored and the second upstream's NXDOMAIN", mdns.RcodeToString[resp.Rcode])
	}
}
