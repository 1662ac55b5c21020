// Package dns is berth's embedded DNS resolver: one per container on a
// user-defined network, listening on 127.0.0.11:53 (UDP and TCP) inside the
// container's network namespace. It answers container names, short IDs and
// aliases from the network controller's name table and forwards every other
// question to the host's upstream servers from the daemon's namespace.
//
// The listening sockets are made on a throw-away thread that entered the
// container's namespace (a socket stays in the namespace it was made in);
// everything else, serving included, runs on ordinary goroutines. The
// package touches no firewall, no routes and no interface: no DNAT is needed
// because the daemon, as root, binds port 53 itself.
package dns

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	mdns "github.com/miekg/dns"
	"golang.org/x/net/ipv4"
)

// Buffer sizes: a query is a few hundred bytes at most (one question,
// perhaps an OPT record); a larger datagram is garbage. Answers of a batch
// are packed one after the other into one arena; an answer that does not
// fit gets a buffer of its own. Small buffers matter: there is a resolver
// per container (about 20 KiB each).
const (
	udpBatch  = 8 // datagrams one recvmmsg/sendmmsg moves
	inBufSize = 2048
	arenaSize = 4096
)

// Resolver serves one sandbox.
type Resolver struct {
	sandboxID string
	names     Names
	fwd       *forwarder
	log       *slog.Logger
	upstreams atomic.Pointer[[]netip.AddrPort]

	udp *net.UDPConn
	tcp *mdns.Server

	ctx    context.Context // cancelled by Close: forwards in flight give up
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// serve starts answering on udp and tcp (either may be nil), which must
// already be bound where the sandbox's clients look (127.0.0.11:53).
func serve(sandboxID string, names Names, fwd *forwarder, upstreams []netip.AddrPort, udp *net.UDPConn, tcp net.Listener, log *slog.Logger) *Resolver {
	r := &Resolver{sandboxID: sandboxID, names: names, fwd: fwd, log: log, udp: udp}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.SetUpstreams(upstreams)
	if udp != nil {
		// One reader: reads of a socket are serialised by the runtime
		// anyway, and a second reader costs a goroutine hand-off (often a
		// thread wake-up) per packet; measured in bench/dns, two readers
		// answered slower than one.
		r.wg.Add(1)
		go r.readUDP()
	}
	if tcp != nil {
		started := make(chan struct{})
		r.tcp = &mdns.Server{Listener: tcp, Net: "tcp", Handler: mdns.HandlerFunc(r.serveTCP),
			NotifyStartedFunc: func() { close(started) }}
		stopped := make(chan struct{})
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer close(stopped)
			if err := r.tcp.ActivateAndServe(); err != nil {
				log.Debug("TCP resolver stopped", "sandbox", short(sandboxID), "err", err)
			}
		}()
		// Wait until the server runs, or a Close right away could not stop it.
		select {
		case <-started:
		case <-stopped:
			r.tcp = nil
			tcp.Close()
		}
	}
	return r
}

// SetUpstreams replaces the servers that questions are forwarded to.
func (r *Resolver) SetUpstreams(ups []netip.AddrPort) {
	cp := append([]netip.AddrPort(nil), ups...)
	r.upstreams.Store(&cp)
}

// readUDP answers berth's names inline, on the reading goroutine (no
// hand-off on the fast path), with recvmmsg and sendmmsg: under load one
// system call takes in several queries and one sends their answers
// (measured: +50% queries/s with 16 in flight, bench/dns). The rest is
// forwarded on goroutines of their own, so that a slow upstream never
// holds up a local answer.
func (r *Resolver) readUDP() {
	defer r.wg.Done()
	pc := ipv4.NewPacketConn(r.udp)
	in := make([]ipv4.Message, udpBatch)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, inBufSize)}
	}
	out := make([]ipv4.Message, 0, udpBatch)
	arena := make([]byte, arenaSize)
	for {
		n, err := pc.ReadBatch(in, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		out, used := out[:0], 0
		for i := 0; i < n; i++ {
			m := &in[i]
			q := new(mdns.Msg)
			if err := q.Unpack(m.Buffers[0][:m.N]); err != nil || q.Response {
				continue // garbage gets no reply: a reply could be used to amplify
			}
			from := m.Addr.(*net.UDPAddr).AddrPort()
			limit := clientLimit(q, "udp")
			resp := answerLocal(q, r.names, r.sandboxID, limit)
			if resp == nil {
				r.wg.Add(1)
				go func() {
					defer r.wg.Done()
					resp := r.forward(q, "udp")
					resp.Truncate(limit)
					r.writeUDP(resp, from, nil)
				}()
				continue
			}
			b, err := resp.PackBuffer(arena[used:])
			if err != nil {
				continue
			}
			if len(b) > 0 && used+len(b) <= len(arena) && &arena[used] == &b[0] {
				used += len(b) // packed in the arena, not in a buffer of its own
			}
			out = append(out, ipv4.Message{Buffers: [][]byte{b}, Addr: m.Addr})
		}
		for sent := 0; sent < len(out); {
			k, err := pc.WriteBatch(out[sent:], 0)
			if err != nil {
				break
			}
			sent += k
		}
	}
}

func (r *Resolver) writeUDP(resp *mdns.Msg, to netip.AddrPort, buf []byte) {
	b, err := resp.PackBuffer(buf)
	if err != nil {
		r.log.Warn("pack DNS answer", "sandbox", short(r.sandboxID), "err", err)
		return
	}
	if _, err := r.udp.WriteToUDPAddrPort(b, to); err != nil && !errors.Is(err, net.ErrClosed) {
		r.log.Debug("send DNS answer", "sandbox", short(r.sandboxID), "to", to, "err", err)
	}
}

// serveTCP answers one question that came over TCP.
func (r *Resolver) serveTCP(w mdns.ResponseWriter, q *mdns.Msg) {
	resp := answerLocal(q, r.names, r.sandboxID, mdns.MaxMsgSize)
	if resp == nil {
		resp = r.forward(q, "tcp")
	}
	if err := w.WriteMsg(resp); err != nil {
		r.log.Debug("send DNS answer over TCP", "sandbox", short(r.sandboxID), "err", err)
	}
}

// forward sends q upstream when the sandbox has a way out, and answers
// SERVFAIL at once when it has none (an --internal network) or no upstream
// is known, as Docker does: no client waits for a timeout.
func (r *Resolver) forward(q *mdns.Msg, proto string) *mdns.Msg {
	ups := *r.upstreams.Load()
	if len(ups) == 0 || !r.names.ExternalAccess(r.sandboxID) {
		return new(mdns.Msg).SetRcode(q, mdns.RcodeServerFailure)
	}
	return r.fwd.forward(r.ctx, q, proto, ups)
}

// Close stops serving, closes the sockets (which frees the sandbox's
// namespace of them) and waits for every goroutine of the resolver.
func (r *Resolver) Close() error {
	var err error
	r.once.Do(func() {
		r.cancel()
		if r.udp != nil {
			err = r.udp.Close()
		}
		if r.tcp != nil {
			err = errors.Join(err, r.tcp.Shutdown())
		}
		r.wg.Wait()
	})
	return err
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
