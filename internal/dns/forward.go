package dns

import (
	"context"
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

// forwarder sends queries that are not berth's to upstream servers. It
// runs on the daemon's ordinary goroutines, so its sockets are made in the
// daemon's own (host) network namespace, never in a container's.
type forwarder struct {
	timeout time.Duration // per exchange with one upstream
	slots   chan struct{}
	log     *slog.Logger
}

func newForwarder(timeout time.Duration, log *slog.Logger) *forwarder {
	return &forwarder{timeout: timeout, slots: make(chan struct{}, maxForwards), log: log}
}

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
	resp, err := f.exchangeOnce(ctx, q, proto, up)
	if err != nil || proto != "udp" || !resp.Truncated {
		return resp, err
	}
	full, err := f.exchangeOnce(ctx, q, "tcp", up)
	if err != nil {
		// The truncated answer is still an answer: the client may retry over TCP.
		return resp, nil
	}
	return full, nil
}

func (f *forwarder) exchangeOnce(ctx context.Context, q *mdns.Msg, proto string, up netip.AddrPort) (*mdns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	// UDPSize: take replies up to 4 KiB from servers that ignore a plain
	// query's 512-byte limit rather than drop them (the client's own limit
	// is applied later); a query with EDNS0 sets its own. Not 64 KiB, as
	// Docker: the buffer is allocated per exchange, and larger UDP answers
	// do not happen (DNS flag day 2020 caps them at 1232 bytes).
	c := &mdns.Client{Net: proto, Timeout: f.timeout, UDPSize: upstreamUDPSize}
	resp, _, err := c.ExchangeContext(ctx, q, up.String())
	return resp, err
}
