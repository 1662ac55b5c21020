package dns

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Address is where containers find the resolver, as Docker's.
var Address = netip.MustParseAddr("127.0.0.11")

// DefaultTimeout bounds one exchange with one upstream server: moby's
// extIOTimeout. An upstream that answers in 2–4 s (a slow link, a
// recursive lookup far away) answers through berth as through Docker;
// with 2 s it was a SERVFAIL (QA round 27).
const DefaultTimeout = 4 * time.Second

// ListenFunc makes the resolver's UDP and TCP sockets for the sandbox
// whose namespace is at sb.Path, or takes over sb.Kept; sb.Again says an
// earlier resolver may have served it. The real one (ListenInNamespace)
// listens on 127.0.0.11 inside it; tests bind loopback ports of their own.
// It owns sb.Kept: it closes the descriptors whatever it returns.
type ListenFunc func(sb Sandbox) (*net.UDPConn, net.Listener, error)

// Sockets are the descriptors of a resolver's two listening sockets, UDP
// and TCP, handed from one daemon to the next across a restart (see
// Manager.Detach). Queries sent meanwhile wait in them: datagrams in the
// UDP socket's receive queue, connections in the TCP socket's backlog.
type Sockets struct{ UDP, TCP int }

// Close closes both descriptors.
func (s Sockets) Close() {
	unix.Close(s.UDP)
	unix.Close(s.TCP)
}

// Config wires a Manager.
type Config struct {
	Names Names
	Log   *slog.Logger
	// Timeout of one upstream exchange; zero means DefaultTimeout.
	Timeout time.Duration
	// Listen makes the sockets; nil means ListenInNamespace(nil, nil), which
	// binds 127.0.0.11:53 itself.
	Listen ListenFunc
}

// Sandbox is what a resolver needs to know of its container.
type Sandbox struct {
	ID   string // the network sandbox's ID, as the Names know it
	Path string // its network namespace
	// Upstreams are the servers other names are forwarded to, in order.
	Upstreams []netip.AddrPort
	// UpstreamsInSandbox: the upstreams are the container's own (--dns),
	// asked from inside its namespace, as Docker asks them (a --dns
	// 127.0.0.1 is the container's loopback); otherwise they are the
	// host's, asked from the daemon's namespace (Docker's HostLoopback).
	// Fixed when the resolver starts.
	UpstreamsInSandbox bool
	// NdotsSet says the container's resolv.conf sets ndots: then a
	// single-label name berth does not know is answered "no records"
	// instead of forwarded, as Docker does; the client's resolver goes on
	// with its search domains.
	NdotsSet bool
	// Again says the namespace may hold what an earlier resolver of the
	// sandbox left (a re-adopted container's, whose daemon restarted):
	// its redirect's ports are tried first. A new sandbox has none, and
	// looking would cost each start a dump of its (absent) table.
	Again bool
	// Kept are the sockets the sandbox's resolver of the daemon before
	// left (Detach), if it left any: the new resolver serves them, and
	// answers the queries that waited in them. Start owns them: it
	// closes them whatever it returns.
	Kept *Sockets
}

// Manager keeps one resolver per sandbox. Its methods are safe for
// concurrent use and never wait on a query.
type Manager struct {
	cfg Config
	fwd *forwarder

	mu        sync.Mutex
	resolvers map[string]*Resolver
	starting  map[string]chan struct{} // resolvers being made, closed when made or failed
	closed    bool                     // by Close: no resolver is made after it
}

// errManagerClosed is a Start's error after Close.
var errManagerClosed = errors.New("the DNS resolvers are closed")

// NewManager returns a manager with no resolvers.
func NewManager(cfg Config) *Manager {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Listen == nil {
		cfg.Listen = ListenInNamespace(nil, nil)
	}
	return &Manager{cfg: cfg, fwd: newForwarder(cfg.Timeout, cfg.Log), resolvers: map[string]*Resolver{}, starting: map[string]chan struct{}{}}
}

// Start makes sb's resolver listen and serve. For a sandbox that has one
// already it only updates the upstreams (idempotent). Starts of different
// sandboxes run in parallel (a restarted daemon starts hundreds); a Start,
// Stop or Close of a sandbox whose resolver is being made waits for it.
func (m *Manager) Start(sb Sandbox) (err error) {
	m.mu.Lock()
	m.waitStartingLocked(sb.ID)
	if m.closed {
		m.mu.Unlock()
		sb.closeKept()
		return fmt.Errorf("start DNS resolver of sandbox %s: %w", short(sb.ID), errManagerClosed)
	}
	if r, ok := m.resolvers[sb.ID]; ok {
		r.SetUpstreams(sb.Upstreams)
		r.ndotsSet.Store(sb.NdotsSet)
		m.mu.Unlock()
		sb.closeKept()
		return nil
	}
	done := make(chan struct{})
	m.starting[sb.ID] = done
	m.mu.Unlock()
	var r *Resolver
	defer func() { // even if start panics: waiters must not wait for ever
		m.mu.Lock()
		defer m.mu.Unlock()
		delete(m.starting, sb.ID)
		close(done)
		switch {
		case r != nil && m.closed: // Close or Detach came meanwhile and waited for this start
			r.Close()
			err = fmt.Errorf("start DNS resolver of sandbox %s: %w", short(sb.ID), errManagerClosed)
		case r != nil:
			m.resolvers[sb.ID] = r
		}
	}()
	r, err = m.start(sb)
	if err != nil {
		return err
	}
	m.cfg.Log.Debug("DNS resolver started", "sandbox", short(sb.ID), "upstreams", sb.Upstreams)
	return nil
}

// start makes a resolver for sb, without m.mu: the sockets are made in
// the sandbox's namespace, and its redirect written there.
func (m *Manager) start(sb Sandbox) (*Resolver, error) {
	udp, tcp, err := m.cfg.Listen(sb)
	if err != nil {
		return nil, fmt.Errorf("start DNS resolver of sandbox %s: %w", short(sb.ID), err)
	}
	fwd := m.fwd
	if sb.UpstreamsInSandbox {
		fwd = m.fwd.inNamespace(sb.Path)
	}
	r := serve(sb.ID, m.cfg.Names, fwd, sb.Upstreams, udp, tcp, m.cfg.Log)
	r.ndotsSet.Store(sb.NdotsSet)
	return r, nil
}

// closeKept closes the kept sockets, if any.
func (sb Sandbox) closeKept() {
	if sb.Kept != nil {
		sb.Kept.Close()
	}
}

// waitStartingLocked waits, with m.mu held on entry and on return, until
// no resolver of sandboxID is being made.
func (m *Manager) waitStartingLocked(sandboxID string) {
	for {
		pending, ok := m.starting[sandboxID]
		if !ok {
			return
		}
		m.mu.Unlock()
		<-pending
		m.mu.Lock()
	}
}

// Running reports whether sandboxID has a resolver.
func (m *Manager) Running(sandboxID string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.resolvers[sandboxID]
	return ok
}

// Stop closes sandboxID's resolver; one that does not run is not an error.
// Its sockets hold the sandbox's namespace alive, so stop it before (or
// soon after) the namespace is deleted.
func (m *Manager) Stop(sandboxID string) error {
	m.mu.Lock()
	m.waitStartingLocked(sandboxID)
	r, ok := m.resolvers[sandboxID]
	delete(m.resolvers, sandboxID)
	m.mu.Unlock()
	if !ok {
		return nil
	}
	return r.Close()
}

// Close stops every resolver and closes the upstream sockets; the
// manager forwards nothing after it.
func (m *Manager) Close() error {
	var errs []error
	for _, r := range m.shut() {
		errs = append(errs, r.Close())
	}
	m.fwd.close()
	return errors.Join(errs...)
}

// Detach is Close for a daemon that stops while its containers run on:
// every resolver stops serving but its listening sockets stay open, and
// their descriptors are returned by sandbox ID for the next daemon
// (Sandbox.Kept). A query that arrives meanwhile waits in them, to be
// answered once the next resolver serves them, where a closed socket
// would refuse it (the redirect in the namespace outlives the daemon).
// Each resolver's reader stops between two batches, so a query it read
// is answered; one forwarded upstream and still unanswered is dropped
// (not answered SERVFAIL), and a TCP connection already accepted is
// closed: their clients ask again, of the next daemon. A resolver whose sockets cannot be kept
// is closed, and left out.
func (m *Manager) Detach() map[string]Sockets {
	kept := map[string]Sockets{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	// At once: a resolver's stop waits for its two serving goroutines
	// to notice, about half a millisecond, which one after the other
	// made a daemon with 14 containers take twice as long to exit.
	for id, r := range m.shut() {
		wg.Go(func() {
			s, err := r.detach()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				m.cfg.Log.Warn("DNS resolver's sockets not kept for the next daemon", "sandbox", short(id), "err", err)
				return
			}
			kept[id] = s
		})
	}
	wg.Wait()
	m.fwd.close()
	return kept
}

// shut marks the manager closed, waits for every start under way,
// and takes its resolvers.
func (m *Manager) shut() map[string]*Resolver {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	for len(m.starting) > 0 {
		for id := range m.starting {
			m.waitStartingLocked(id)
			break
		}
	}
	rs := m.resolvers
	m.resolvers = map[string]*Resolver{}
	return rs
}
