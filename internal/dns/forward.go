package dns

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"time"

	mdns "github.com/miekg/dns"
)

// maxForwards bounds the queries in flight to upstream servers across all
// resolvers, as Docker's 1024: a flood from one container cannot make the
// daemon open sockets without end.
const maxForwards = 1024

// upstreamUDPSize is the largest UDP answer taken from an upstream.
const upstreamUDPSize = 4096

// forwarder sends queries that are not berth's to upstream servers: over
// UDP through a few sockets per upstream that the queries in flight share
// (udpPool), over TCP on a connection per query (truncated answers, and
// clients that asked over TCP). It runs on the daemon's ordinary
// goroutines, so its sockets are made in the daemon's own (host) network
// namespace, never in a container's.
type forwarder struct {
	timeout time.Duration // per exchange with one upstream
	slots   chan struct{}
	udp     *udpPool
	log     *slog.Logger
}

func newForwarder(timeout time.Duration, log *slog.Logger) *forwarder {
	return &forwarder{timeout: timeout, slots: make(chan struct{}, maxForwards), udp: newUDPPool(), log: log}
}

// close closes the upstream sockets; queries in flight fail at once.
func (f *forwarder) close() { f.udp.close() }

// forward asks the upstreams in order and returns the first answer that
// is not SERVFAIL or REFUSED (so NXDOMAIN comes back at once); a UDP answer
// with the TC bit is asked again over TCP. It returns SERVFAIL when no
// upstream answers, or REFUSED when too many queries are in flight.
func (f *forwarder) forward(ctx context.Context, q *mdns.Msg, proto string, upstreams []netip.AddrPort) *mdns.Msg {
	select {
	case f.slots <- struct{}{}:
		defer func() { <-f.slots }()
	default:
		return new(mdns.Msg).SetRcode(q, mdns.RcodeRefused)
	}
	for _, up := range upstreams {
		resp, err := f.exchange(ctx, q, proto, up)
		if err != nil {
			f.log.Debug("upstream did not answer", "upstream", up, "question", q.Question[0].Name, "err", err)
			continue
		}
		if resp.Rcode == mdns.RcodeServerFailure || resp.Rcode == mdns.RcodeRefused {
			continue
		}
		resp.Id = q.Id
		resp.Compress = true
		return resp
	}
	return new(mdns.Msg).SetRcode(q, mdns.RcodeServerFailure)
}

// exchange asks one upstream over proto, and over TCP again when a UDP
// answer came back truncated.
func (f *forwarder) exchange(ctx context.Context, q *mdns.Msg, proto string, up netip.AddrPort) (*mdns.Msg, error) {
	if proto == "tcp" {
		return f.exchangeTCP(ctx, q, up)
	}
	resp, err := f.exchangeUDP(ctx, q, up)
	if errors.Is(err, errTooLarge) {
		return f.exchangeTCP(ctx, q, up)
	}
	if err != nil || !resp.Truncated {
		return resp, err
	}
	full, err := f.exchangeTCP(ctx, q, up)
	if err != nil {
		// The truncated answer is still an answer: the client may retry over TCP.
		return resp, nil
	}
	return full, nil
}

// exchangeUDP asks up through the shared sockets. UDP answers up to
// upstreamUDPSize are taken from servers that ignore a plain query's
// 512-byte limit rather than dropped (the client's own limit is applied
// later); a larger one is asked again over TCP.
func (f *forwarder) exchangeUDP(ctx context.Context, q *mdns.Msg, up netip.AddrPort) (*mdns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	return f.udp.exchange(ctx, q, up)
}

func (f *forwarder) exchangeTCP(ctx context.Context, q *mdns.Msg, up netip.AddrPort) (*mdns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	c := &mdns.Client{Net: "tcp", Timeout: f.timeout}
	resp, _, err := c.ExchangeContext(ctx, q, up.String())
	return resp, err
}
