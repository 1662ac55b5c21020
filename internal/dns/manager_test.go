package dns

import (
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// gatedListen binds loopback sockets like loopbackListen, but each call
// first reports itself on entered and waits for release.
type gatedListen struct {
	entered chan string
	release chan struct{}
	calls   atomic.Int32
}

func (g *gatedListen) listen(sb Sandbox) (*net.UDPConn, net.Listener, error) {
	g.calls.Add(1)
	g.entered <- sb.Path
	<-g.release
	var at netip.AddrPort
	return loopbackListen(nil, &at)(sb)
}

func newGated() *gatedListen {
	return &gatedListen{entered: make(chan string, 16), release: make(chan struct{})}
}

// Two sandboxes' resolvers are made at once: a restarted daemon makes
// hundreds, and one listen must not wait for another's.
func TestManagerStartsSandboxesInParallel(t *testing.T) {
	g := newGated()
	m := NewManager(Config{Names: newFakeNames(), Listen: g.listen})
	t.Cleanup(func() { m.Close() })
	errs := make(chan error, 2)
	for _, id := range []string{"sb1", "sb2"} {
		go func() { errs <- m.Start(Sandbox{ID: id, Path: "/ns/" + id}) }()
	}
	for range 2 {
		select {
		case <-g.entered:
		case <-time.After(time.Minute):
			t.Fatal("the second sandbox's listen waited for the first's")
		}
	}
	close(g.release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if !m.Running("sb1") || !m.Running("sb2") {
		t.Errorf("Running(sb1), Running(sb2) = %v, %v, want both", m.Running("sb1"), m.Running("sb2"))
	}
}

// A second Start of a sandbox whose resolver is being made waits for it
// and makes no sockets of its own (they would point the sandbox's
// redirect at ports of a resolver nobody keeps).
func TestManagerStartOfOneSandboxListensOnce(t *testing.T) {
	g := newGated()
	m := NewManager(Config{Names: newFakeNames(), Listen: g.listen})
	t.Cleanup(func() { m.Close() })
	errs := make(chan error, 2)
	go func() { errs <- m.Start(Sandbox{ID: "sb1", Path: "/ns/sb1"}) }()
	<-g.entered
	go func() { errs <- m.Start(Sandbox{ID: "sb1", Path: "/ns/sb1", NdotsSet: true}) }()
	select {
	case <-g.entered:
		t.Fatal("a second Start of sb1 listened while the first was listening")
	case <-time.After(50 * time.Millisecond):
	}
	close(g.release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := g.calls.Load(); n != 1 {
		t.Errorf("listens for one sandbox = %d, want 1", n)
	}
}

// A Stop that comes while the resolver is being made waits for it and
// closes it: none is left holding the sandbox's namespace.
func TestManagerStopWaitsForAStart(t *testing.T) {
	g := newGated()
	m := NewManager(Config{Names: newFakeNames(), Listen: g.listen})
	t.Cleanup(func() { m.Close() })
	started := make(chan error, 1)
	go func() { started <- m.Start(Sandbox{ID: "sb1", Path: "/ns/sb1"}) }()
	<-g.entered
	stopped := make(chan error, 1)
	go func() { stopped <- m.Stop("sb1") }()
	select {
	case <-stopped:
		t.Fatal("Stop returned while the resolver was still being made")
	case <-time.After(50 * time.Millisecond):
	}
	close(g.release)
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if m.Running("sb1") {
		t.Error("sb1's resolver runs after a Stop that came during its start")
	}
}

// A Start after Close makes no resolver (its forwarder is closed, and
// nothing would ever close its sockets); one that was being made when
// Close came is closed, not kept.
func TestManagerStartAfterClose(t *testing.T) {
	g := newGated()
	m := NewManager(Config{Names: newFakeNames(), Listen: g.listen})
	started := make(chan error, 1)
	go func() { started <- m.Start(Sandbox{ID: "sb1", Path: "/ns/sb1"}) }()
	<-g.entered
	closed := make(chan error, 1)
	go func() { closed <- m.Close() }()
	close(g.release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	<-started
	if m.Running("sb1") {
		t.Error("a resolver made while Close ran is kept after it")
	}
	if err := m.Start(Sandbox{ID: "sb2", Path: "/ns/sb2"}); err == nil || m.Running("sb2") {
		t.Errorf("Start after Close = %v, running %v; want an error and no resolver", err, m.Running("sb2"))
	}
}
