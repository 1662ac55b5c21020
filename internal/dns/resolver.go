// Package dns is berth's embedded DNS resolver: one per container on a
// user-defined network, listening on 127.0.0.11:53 (UDP and TCP) inside the
// container's network namespace. It answers container names, short IDs and
// aliases from the network controller's name table and forwards every other
// question to the host's upstream servers from the daemon's namespace.
//
// The listening sockets are made on a thread that entered the container's
// namespace for the purpose (a socket stays in the namespace it was made
// in); everything else, serving included, runs on ordinary goroutines.
// They listen on ports the kernel picks, and a redirect in the
// namespace (ListenInNamespace's RedirectFunc, the daemon's nftables one)
// sends 127.0.0.11:53 there, so that port 53 stays the container's. A
// stopping daemon hands the sockets on (Manager.Detach, Sandbox.Kept):
// queries sent while no daemon runs wait in them. The package touches no
// routes and no interface.
package dns

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	mdns "github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/fdutil"
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
	// maxInterned bounds the names a resolver keeps as strings (every
	// name asked goes through it, forwarded ones too): a container asks
	// for a few peers, and a full table only costs one allocation a query.
	maxInterned = 64
)

// Resolver serves one sandbox.
type Resolver struct {
	sandboxID string
	names     Names
	fwd       *forwarder
	slots     chan struct{} // this resolver's forwards in flight (newSlots)
	log       *slog.Logger
	upstreams atomic.Pointer[[]netip.AddrPort]
	ndotsSet  atomic.Bool
	interned  map[string]string // interned names; the UDP reader's only

	udp *net.UDPConn
	tcp *mdns.Server
	// detaching makes the UDP reader return at its next read error
	// (detach's deadline); readDone is closed when it has returned.
	detaching atomic.Bool
	readDone  chan struct{}

	ctx    context.Context // cancelled by Close: forwards in flight give up
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// serve starts answering on udp and tcp (either may be nil), which must
// already be bound where the sandbox's clients look (127.0.0.11:53).
func serve(sandboxID string, names Names, fwd *forwarder, upstreams []netip.AddrPort, udp *net.UDPConn, tcp net.Listener, log *slog.Logger) *Resolver {
	r := &Resolver{sandboxID: sandboxID, names: names, fwd: fwd, slots: newSlots(), log: log, udp: udp, interned: map[string]string{}}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.SetUpstreams(upstreams)
	r.readDone = make(chan struct{})
	if udp != nil {
		// One reader: reads of a socket are serialised by the runtime
		// anyway, and a second reader costs a goroutine hand-off (often a
		// thread wake-up) per packet; measured in bench/dns, two readers
		// answered slower than one.
		r.wg.Add(1)
		go r.readUDP()
	} else {
		close(r.readDone)
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
// (measured: +50% queries/s with 16 in flight, bench/dns). The common
// query is answered by the fast path, without decoding it into a message
// and without allocating; the rest is decoded and, when it is not about
// one of berth's names, forwarded without waiting (the answer is sent by
// whichever goroutine receives it), so that a slow upstream never holds
// up a local answer.
func (r *Resolver) readUDP() {
	defer r.wg.Done()
	defer close(r.readDone)
	bc, err := newBatchConn(r.udp, udpBatch, inBufSize)
	if err != nil {
		r.log.Error("DNS resolver cannot read", "sandbox", short(r.sandboxID), "err", err)
		return
	}
	arena := make([]byte, arenaSize)
	var nameBuf [maxNameLen]byte
	for {
		n, err := bc.read()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || r.detaching.Load() {
				return
			}
			continue
		}
		used := 0
		for i := range n {
			pkt, from := bc.payload(i)
			if len(pkt) == 0 {
				continue
			}
			if k := r.answerFast(pkt, arena[used:], &nameBuf); k > 0 {
				bc.queue(i, arena[used:used+k])
				used += k
				continue
			}
			if b := r.answerGeneral(pkt, from, arena[used:]); len(b) > 0 {
				if used < len(arena) && &arena[used] == &b[0] {
					used += len(b) // packed in the arena, not in a buffer of its own
				}
				bc.queue(i, b)
			}
		}
		if err := bc.flush(); errors.Is(err, net.ErrClosed) {
			return
		}
	}
}

// answerFast answers pkt into out when the fast path can (see
// fastpath.go) and returns the answer's length, or 0.
func (r *Resolver) answerFast(pkt, out []byte, nameBuf *[maxNameLen]byte) int {
	q, ok := parsePlainQuery(pkt, nameBuf)
	if !ok {
		return 0
	}
	addrs, ok := r.names.Resolve(r.sandboxID, r.intern(q.name))
	if !ok {
		return 0
	}
	return answerPlain(pkt, q, addrs, out)
}

// intern returns name as a string, the same one each time: asking the
// Names with it allocates nothing once a name was seen. The table is
// bounded; it starts again when full.
func (r *Resolver) intern(name []byte) string {
	if s, ok := r.interned[string(name)]; ok {
		return s
	}
	if len(r.interned) >= maxInterned {
		clear(r.interned)
	}
	s := string(name)
	r.interned[s] = s
	return s
}

// answerGeneral decodes pkt and returns its answer packed into arena (or
// a buffer of its own when it does not fit), or nothing when pkt is
// garbage or its question is forwarded (answered later).
func (r *Resolver) answerGeneral(pkt []byte, from netip.AddrPort, arena []byte) []byte {
	q := new(mdns.Msg)
	if err := q.Unpack(pkt); err != nil || q.Response {
		return formatError(pkt, arena)
	}
	limit := clientLimit(q, "udp")
	resp := answerLocal(q, r.names, r.sandboxID, limit)
	if resp == nil {
		r.wg.Add(1)
		r.forward(q, "udp", func(resp *mdns.Msg) {
			defer r.wg.Done()
			resp.Truncate(limit)
			// Truncate turns compression off when the uncompressed answer
			// fits the client's limit; a forwarded answer goes out
			// compressed anyway, as Docker's does (half the size for a
			// long list of records, and no fragments).
			resp.Compress = true
			if r.handedOn(resp) {
				return
			}
			r.writeUDP(resp, from, nil)
		})
		return nil
	}
	b, err := resp.PackBuffer(arena)
	if err != nil {
		return r.packFailed(resp, err, arena)
	}
	return b
}

// packFailed answers SERVFAIL for an answer that cannot be packed (a PTR
// whose name has a label over 63 bytes: a container or network name that
// long), as moby's resolver does, so that the client does not wait out
// its timeout; and says why in the log.
func (r *Resolver) packFailed(resp *mdns.Msg, err error, buf []byte) []byte {
	r.log.Warn("pack DNS answer: answering SERVFAIL", "sandbox", short(r.sandboxID), "err", err)
	fail := new(mdns.Msg)
	fail.SetRcode(resp, mdns.RcodeServerFailure)
	fail.Answer, fail.Ns, fail.Extra = nil, nil, nil
	b, err := fail.PackBuffer(buf)
	if err != nil {
		return nil
	}
	return b
}

// formatError answers a query whose header reads but whose rest does not
// (a name past the packet's end, a compression loop, a broken OPT record)
// with FORMERR, as miekg's server behind Docker's resolver does
// (SetRcodeFormatError: the ID, QR, RCODE, and nothing else). Anything
// shorter than a header, or a response, gets nothing. The reply is the
// 12 bytes of a header, no larger than what came, so it amplifies
// nothing.
func formatError(pkt, arena []byte) []byte {
	if len(pkt) < headerLen || pkt[2]&0x80 != 0 {
		return nil
	}
	out := append(arena[:0], pkt[0], pkt[1], 0x80, mdns.RcodeFormatError)
	return append(out, make([]byte, headerLen-4)...)
}

func (r *Resolver) writeUDP(resp *mdns.Msg, to netip.AddrPort, buf []byte) {
	b, err := resp.PackBuffer(buf)
	if err != nil {
		if b = r.packFailed(resp, err, buf); b == nil {
			return
		}
	}
	if _, err := r.udp.WriteToUDPAddrPort(b, to); err != nil && !errors.Is(err, net.ErrClosed) {
		r.log.Debug("send DNS answer", "sandbox", short(r.sandboxID), "to", to, "err", err)
	}
}

// handedOn reports whether resp is the SERVFAIL of a forward that the
// resolver's detach (a daemon stopping, its sockets handed on) cut
// short: it is not sent, and the client asks again, of the next daemon.
func (r *Resolver) handedOn(resp *mdns.Msg) bool {
	return r.detaching.Load() && r.ctx.Err() != nil && resp.Rcode == mdns.RcodeServerFailure
}

// serveTCP answers one question that came over TCP.
func (r *Resolver) serveTCP(w mdns.ResponseWriter, q *mdns.Msg) {
	resp := answerLocal(q, r.names, r.sandboxID, mdns.MaxMsgSize)
	if resp == nil {
		answer := make(chan *mdns.Msg, 1)
		r.forward(q, "tcp", func(resp *mdns.Msg) { answer <- resp })
		resp = <-answer
	}
	if r.handedOn(resp) {
		return
	}
	b, err := resp.Pack()
	if err != nil {
		if b = r.packFailed(resp, err, nil); b == nil {
			return
		}
	}
	if _, err := w.Write(b); err != nil { // the writer frames it for TCP
		r.log.Debug("send DNS answer over TCP", "sandbox", short(r.sandboxID), "err", err)
	}
}

// forward sends q upstream, and answers SERVFAIL at once when no upstream
// is known, or when the upstreams are the host's and the sandbox has no
// way out (an --internal network), as Docker does: no client waits for a
// timeout. The container's own servers (--dns, asked from its namespace)
// are asked even then, as moby's forwardExtDNS skips only the host's: a
// DNS server on the internal network itself answers (moby#47822, QA round
// 26); one it cannot reach times out as it would in Docker. A single-label
// A or AAAA question gets an empty answer instead when ndots is set.
// done gets the answer (see forwarder.start).
func (r *Resolver) forward(q *mdns.Msg, proto string, done func(*mdns.Msg)) {
	if qs := q.Question[0]; r.ndotsSet.Load() && (qs.Qtype == mdns.TypeA || qs.Qtype == mdns.TypeAAAA) &&
		!strings.Contains(strings.TrimSuffix(qs.Name, "."), ".") {
		// The user set ndots and asked for a name in the root domain:
		// moby's resolver keeps it in ("return failure and let the
		// client retry with the search domain attached").
		done(reply(q))
		return
	}
	ups := *r.upstreams.Load()
	if len(ups) == 0 || (r.fwd.netns == "" && !r.names.ExternalAccess(r.sandboxID)) {
		done(new(mdns.Msg).SetRcode(q, mdns.RcodeServerFailure))
		return
	}
	r.fwd.start(r.ctx, r.slots, q, proto, ups, done)
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
		if r.fwd.netns != "" {
			r.fwd.close() // its sockets would keep the namespace alive
		}
	})
	return err
}

// detach closes r but not its listening sockets: it returns new
// descriptors of them (see Manager.Detach).
func (r *Resolver) detach() (Sockets, error) {
	if r.udp == nil || r.tcp == nil {
		r.Close()
		return Sockets{}, errors.New("the resolver does not serve both UDP and TCP")
	}
	udp, err := fdutil.Dup(r.udp)
	if err != nil {
		r.Close()
		return Sockets{}, err
	}
	// The reader stops between two batches, not by a close: a batch it
	// read as the socket closed would go unanswered, and the queries
	// still queued stay for the next daemon. A read deadline wakes it
	// (a batch under way is answered first).
	r.detaching.Store(true)
	if err := r.udp.SetReadDeadline(time.Unix(1, 0)); err == nil {
		<-r.readDone
	}
	tcp := -1
	if sc, ok := r.tcp.Listener.(syscall.Conn); ok {
		tcp, err = fdutil.Dup(sc)
	} else {
		err = errors.New("the TCP listener has no descriptor")
	}
	r.Close()
	if err != nil {
		unix.Close(udp)
		return Sockets{}, err
	}
	return Sockets{UDP: udp, TCP: tcp}, nil
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
