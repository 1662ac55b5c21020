package dns

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"time"

	mdns "github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/sandbox"
)

// maxForwards bounds one resolver's queries in flight to upstream
// servers, as Docker's 1024 a resolver: one container's flood (to an
// upstream that never answers) fills its own slots, not the others'
// (QA round 27: with one pool for all, it made every container's
// lookups REFUSED). maxForwardsAll bounds them across all resolvers, so
// that many flooding containers cannot take every file descriptor of the
// daemon (a TCP query takes a socket each; UDP ones share a few per
// upstream). Docker has no such bound; at 8,192 eight flooding containers
// (or a few forwarding to themselves) had every other container's
// lookups REFUSED, so it is 32 containers' worth now.
const (
	maxForwards    = 1024
	maxForwardsAll = 32 * maxForwards
)

// forwardSlots is the bound across all resolvers for a daemon whose
// open-file limit is nofile (0: unknown): maxForwardsAll, but no more
// than a quarter of the limit, so that queries in flight leave the
// daemon descriptors for everything else (a limit of 1,024, as under
// some service managers, would otherwise let the queries take them all);
// never less than one resolver's maxForwards.
func forwardSlots(nofile uint64) int {
	if nofile == 0 || nofile/4 >= maxForwardsAll {
		return maxForwardsAll
	}
	return max(int(nofile/4), maxForwards)
}

// openFileLimit is the process's soft RLIMIT_NOFILE (Go raises it to the
// hard limit at start), 0 if it cannot be read.
func openFileLimit() uint64 {
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) != nil || rl.Cur == unix.RLIM_INFINITY {
		return 0
	}
	return rl.Cur
}

// upstreamUDPSize is the largest UDP answer taken from an upstream.
const upstreamUDPSize = 4096

// forwarder sends queries that are not berth's to upstream servers: over
// UDP through a few sockets per upstream that the queries in flight share
// (udpPool), over TCP on a connection per query (truncated answers, and
// clients that asked over TCP). The manager's forwarder makes its sockets
// in the daemon's own (host) network namespace, where the host's
// resolvers, loopback ones included, answer; inNamespace gives one whose
// sockets are made inside a container's, for the container's own --dns
// servers.
type forwarder struct {
	timeout time.Duration // per exchange with one upstream
	slots   chan struct{} // forwardSlots, shared by every forwarder of a manager
	udp     *udpPool
	log     *slog.Logger
	// netns, when not "", is the namespace the sockets are made in.
	netns string
}

func newForwarder(timeout time.Duration, log *slog.Logger) *forwarder {
	return &forwarder{timeout: timeout, slots: make(chan struct{}, forwardSlots(openFileLimit())), udp: newUDPPool(""), log: log}
}

// inNamespace is a forwarder like f whose sockets are made inside the
// network namespace at path; close it when the namespace's resolver goes,
// or its sockets keep the namespace alive.
func (f *forwarder) inNamespace(path string) *forwarder {
	return &forwarder{timeout: f.timeout, slots: f.slots, udp: newUDPPool(path), log: f.log, netns: path}
}

// close closes the upstream sockets; queries in flight fail at once.
func (f *forwarder) close() { f.udp.close() }

// forward asks the upstreams in order and returns the first answer that
// is not SERVFAIL or REFUSED (so NXDOMAIN comes back at once); a UDP answer
// with the TC bit is asked again over TCP. It returns SERVFAIL when no
// upstream answers, or REFUSED when too many queries are in flight.
func (f *forwarder) forward(ctx context.Context, q *mdns.Msg, proto string, upstreams []netip.AddrPort) *mdns.Msg {
	answer := make(chan *mdns.Msg, 1)
	f.start(ctx, nil, q, proto, upstreams, func(resp *mdns.Msg) { answer <- resp })
	return <-answer
}

// newSlots is a resolver's own maxForwards.
func newSlots() chan struct{} { return make(chan struct{}, maxForwards) }

// start is forward without waiting: done gets the answer, exactly once,
// on whichever goroutine has it (the caller's, a socket reader's, a
// timer's). A UDP query takes no goroutine while it waits for upstreams:
// the reader of the socket its answer arrives on hands it on.
//
// own, when not nil, is the asking resolver's slots (newSlots): a query
// takes one of its resolver's and one of all (f.slots), or is REFUSED.
func (f *forwarder) start(ctx context.Context, own chan struct{}, q *mdns.Msg, proto string, upstreams []netip.AddrPort, done func(*mdns.Msg)) {
	if own != nil {
		select {
		case own <- struct{}{}:
		default:
			done(new(mdns.Msg).SetRcode(q, mdns.RcodeRefused))
			return
		}
	}
	select {
	case f.slots <- struct{}{}:
	default:
		if own != nil {
			<-own
		}
		done(new(mdns.Msg).SetRcode(q, mdns.RcodeRefused))
		return
	}
	fl := &flight{f: f, ctx: ctx, q: q, ups: upstreams, done: func(resp *mdns.Msg) {
		<-f.slots
		if own != nil {
			<-own
		}
		done(resp)
	}}
	if proto == "tcp" {
		go fl.overTCP()
		return
	}
	fl.askNext()
}

// flight is one forwarded query on its way through the upstreams.
type flight struct {
	f    *forwarder
	ctx  context.Context
	q    *mdns.Msg
	ups  []netip.AddrPort
	next int // the upstream to ask next
	done func(*mdns.Msg)
}

// askNext sends the query over UDP to the next upstream, or gives up.
func (fl *flight) askNext() {
	if fl.next >= len(fl.ups) || fl.ctx.Err() != nil {
		fl.done(new(mdns.Msg).SetRcode(fl.q, mdns.RcodeServerFailure))
		return
	}
	up := fl.ups[fl.next]
	fl.next++
	fl.f.udp.send(fl.ctx, fl.q, up, fl.f.timeout, func(resp *mdns.Msg, err error) {
		switch {
		case errors.Is(err, errTooLarge):
			go fl.finishOverTCP(up, nil)
		case err == nil && resp.Truncated:
			go fl.finishOverTCP(up, resp)
		case !fl.accept(up, resp, err):
			fl.askNext()
		}
	})
}

// finishOverTCP asks up again over TCP after a truncated UDP answer
// (nil: one too large to take), then goes on as for any answer. When TCP
// fails the truncated answer is still an answer: the client may retry
// over TCP itself.
func (fl *flight) finishOverTCP(up netip.AddrPort, truncated *mdns.Msg) {
	resp, err := fl.f.exchangeTCP(fl.ctx, fl.q, up)
	if err != nil && truncated != nil {
		resp, err = truncated, nil
	}
	if !fl.accept(up, resp, err) {
		fl.askNext()
	}
}

// overTCP asks the upstreams in turn over TCP (the client asked over TCP).
func (fl *flight) overTCP() {
	for fl.next < len(fl.ups) && fl.ctx.Err() == nil {
		up := fl.ups[fl.next]
		fl.next++
		resp, err := fl.f.exchangeTCP(fl.ctx, fl.q, up)
		if fl.accept(up, resp, err) {
			return
		}
	}
	fl.done(new(mdns.Msg).SetRcode(fl.q, mdns.RcodeServerFailure))
}

// accept finishes the flight with resp unless the next upstream must be
// asked: up did not answer, or answered SERVFAIL or REFUSED.
func (fl *flight) accept(up netip.AddrPort, resp *mdns.Msg, err error) bool {
	if err != nil {
		fl.f.log.Debug("upstream did not answer", "upstream", up, "question", fl.q.Question[0].Name, "err", err)
		return false
	}
	if resp.Rcode == mdns.RcodeServerFailure || resp.Rcode == mdns.RcodeRefused {
		return false
	}
	resp.Id = fl.q.Id
	if len(resp.Question) == 0 {
		resp.Question = fl.q.Question // a header-only error answer
	}
	resp.Compress = true
	fl.done(resp)
	return true
}

func (f *forwarder) exchangeTCP(ctx context.Context, q *mdns.Msg, up netip.AddrPort) (*mdns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	c := &mdns.Client{Net: "tcp", Timeout: f.timeout}
	if f.netns == "" {
		resp, _, err := c.ExchangeContext(ctx, q, up.String())
		return resp, err
	}
	var conn net.Conn
	err := sandbox.Do(f.netns, func() error {
		var err error
		conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", up.String())
		return err
	})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	resp, _, err := c.ExchangeWithConnContext(ctx, q, &mdns.Conn{Conn: conn})
	return resp, err
}
