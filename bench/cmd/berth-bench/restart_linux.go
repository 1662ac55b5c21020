package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/berth-net/berth/bench/internal/harness"
	"github.com/berth-net/berth/internal/sandbox"
)

// echoPort is the outside server's UDP echo port during the restarts.
const echoPort = 7

// flowTimeout is how long a probe flow waits for its echo before it
// counts as lost: far above the path's round trip (tens of µs), far below
// a restart.
const flowTimeout = 200 * time.Millisecond

// restarts restarts the daemon p.restarts times with every container the
// scale left running, and meanwhile opens new UDP flows from one of them
// to the outside server, one after the other: each a new conntrack entry
// through the forward and masquerade rules the restart re-applies, so a
// moment without them (a flushed table, a rule missing between two
// commits) loses flows.
func (w *world) restarts(ctx context.Context, p plan, res *restartResult) error {
	echoErr := w.startProxiedEcho(ctx)
	list, err := w.d.ContainerList(ctx, false, nil)
	if err != nil {
		return err
	}
	res.containers = len(list)
	ns, _, err := w.d.Where(ctx, "probe0", "bridge")
	if err != nil {
		return err
	}
	stopEcho, err := echoServer(w.outside, netip.AddrPortFrom(harness.ServerAddr, echoPort))
	if err != nil {
		return err
	}
	defer stopEcho()
	quit := make(chan struct{})
	flows := make(chan flowCount, 1)
	go func() { flows <- probeFlows(ns, netip.AddrPortFrom(harness.ServerAddr, echoPort), quit) }()
	// Lookups from containers on the user network (four of the scale's
	// real ports, spread: the sockets come back in batches), each of its
	// own name: its resolver answers it itself.
	lookups := make(chan lookupCount, 1)
	if p.realPorts > 0 {
		var targets []lookupTarget
		for _, i := range []int{0, p.realPorts / 3, 2 * p.realPorts / 3, p.realPorts - 1} {
			name := fmt.Sprintf("fill%d", i)
			if slices.ContainsFunc(targets, func(t lookupTarget) bool { return t.name == name }) {
				continue
			}
			ns, _, err := w.d.Where(ctx, name, benchNet)
			if err != nil {
				close(quit)
				<-flows
				return err
			}
			targets = append(targets, lookupTarget{ns: ns, name: name})
		}
		go func() { lookups <- probeLookups(targets, quit) }()
	} else {
		lookups <- lookupCount{err: "no container on a user network (--real 0)"}
	}
	// Through the IPv6 side of a published port, which the daemon's
	// proxy carries to the IPv4-only container: one connection open
	// across the restarts and new ones beside it.
	proxied := make(chan proxyCount, 1)
	if echoErr != nil {
		proxied <- proxyCount{err: echoErr.Error()}
	} else {
		go func() { proxied <- probeProxied(proxiedAt, quit) }()
	}
	for range p.restarts {
		time.Sleep(100 * time.Millisecond) // flows before each stop, too
		nd, stop, serve, err := w.d.Restart(ctx, w.bin)
		if err != nil {
			close(quit)
			<-flows
			<-lookups
			<-proxied
			return err
		}
		w.d = nd
		res.stop = append(res.stop, stop)
		res.serve = append(res.serve, serve)
	}
	time.Sleep(100 * time.Millisecond)
	close(quit)
	fc, lc := <-flows, <-lookups
	res.proxied = <-proxied
	res.flows, res.lost, res.flowErr = fc.sent, fc.lost, fc.err
	res.lookupTargets, res.lookups, res.lookupsFailed, res.slowestLookup, res.lookupErr = lc.targets, lc.sent, lc.failed, lc.slowest, lc.err
	return nil
}

// proxiedPort is the host port the proxied probe's container publishes,
// and proxiedAt its IPv6 side, which only the daemon's proxy serves (the
// container has IPv4 alone).
const (
	proxiedPort = 18080
	proxiedAt   = "[::1]:18080"
)

// proxyTimeout is how long a line through the proxy waits for its echo,
// as long as a lookup.
const proxyTimeout = 5 * time.Second

// startProxiedEcho runs a container on "bridge" that echoes every TCP
// connection on its port 80 (busybox nc running cat for each), published
// on proxiedPort, and waits until a line comes back through the proxy.
func (w *world) startProxiedEcho(ctx context.Context) error {
	if _, err := w.d.RunPublished(ctx, "proxied", image, "bridge", proxiedPort, 80, "nc", "-ll", "-p", "80", "-e", "cat"); err != nil {
		return err
	}
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var c net.Conn
		if c, err = net.DialTimeout("tcp6", proxiedAt, time.Second); err != nil {
			continue
		}
		err = echoLine(c, bufio.NewReader(c), 0)
		c.Close()
		if err == nil {
			return nil
		}
	}
	return fmt.Errorf("no echo through %s: %w", proxiedAt, err)
}

// proxyCount is what probeProxied saw.
type proxyCount struct {
	lines, cut    int           // lines sent on the open connection; times it was cut
	conns, failed int           // new connections made; those that failed
	slowest       time.Duration // of the answered lines and connections
	err           string        // the first failure
}

// probeProxied keeps a connection to at open and sends a line on it, one
// after the other with a millisecond between, until quit, each waiting up
// to proxyTimeout for its echo; a connection cut is counted and made
// again (a new connection, as is each try while that fails). Every tenth
// turn it also makes a new connection and sends a line on it. A restart whose proxy cuts its connections costs a cut, and
// one that refuses connections while no daemon runs a failure.
func probeProxied(at string, quit <-chan struct{}) proxyCount {
	var pc proxyCount
	fail := func(n *int, err error) {
		*n++
		if pc.err == "" {
			pc.err = err.Error()
		}
	}
	var open net.Conn
	var r *bufio.Reader
	defer func() {
		if open != nil {
			open.Close()
		}
	}()
	for seq := 1; ; seq++ {
		select {
		case <-quit:
			return pc
		default:
		}
		t0 := time.Now()
		if open == nil { // cut: made again, a new connection
			pc.conns++
			c, err := net.DialTimeout("tcp6", at, proxyTimeout)
			if err != nil {
				fail(&pc.failed, err)
				time.Sleep(time.Millisecond)
				continue
			}
			open, r = c, bufio.NewReader(c)
		}
		pc.lines++
		if err := echoLine(open, r, seq); err != nil {
			fail(&pc.cut, err)
			open.Close()
			open = nil
		} else {
			pc.slowest = max(pc.slowest, time.Since(t0))
		}
		if seq%10 == 0 {
			pc.conns++
			t0 := time.Now()
			c, err := net.DialTimeout("tcp6", at, proxyTimeout)
			if err == nil {
				err = echoLine(c, bufio.NewReader(c), seq)
				c.Close()
			}
			if err != nil {
				fail(&pc.failed, err)
			} else {
				pc.slowest = max(pc.slowest, time.Since(t0))
			}
		}
		time.Sleep(time.Millisecond)
	}
}

// echoLine sends seq as a line on c and reads it back through r.
func echoLine(c net.Conn, r *bufio.Reader, seq int) error {
	c.SetDeadline(time.Now().Add(proxyTimeout))
	want := strconv.Itoa(seq) + "\n"
	if _, err := io.WriteString(c, want); err != nil {
		return err
	}
	got, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("echo %q, want %q", got, want)
	}
	return nil
}

// lookupTimeout is how long a probe lookup waits for its answer: one try
// of glibc's resolver (RES_TIMEOUT, 5 s).
const lookupTimeout = 5 * time.Second

// lookupCount is what probeLookups saw.
type lookupCount struct {
	targets      int // containers asked from
	sent, failed int
	slowest      time.Duration // of the answered
	err          string        // the first failure
}

// lookupTarget is a container probeLookups asks from: its namespace and
// its name.
type lookupTarget struct{ ns, name string }

// probeLookups asks the resolver at 127.0.0.11:53 of each target in turn
// for the target's own name, one lookup after the other with a
// millisecond between, until quit; each from a new socket made in the
// target's namespace, as a C library's lookup, waiting up to
// lookupTimeout. A lookup sent while no daemon runs fails at once when
// nothing holds the resolver's socket (the redirect's port is closed:
// refused) and waits for the next daemon when the reaper holds it.
func probeLookups(targets []lookupTarget, quit <-chan struct{}) lookupCount {
	lc := lookupCount{targets: len(targets)}
	fail := func(err error) {
		lc.failed++
		if lc.err == "" {
			lc.err = err.Error()
		}
	}
	q := new(mdns.Msg)
	for id := uint16(1); ; id++ {
		select {
		case <-quit:
			return lc
		default:
		}
		tg := targets[int(id)%len(targets)]
		q.SetQuestion(mdns.Fqdn(tg.name), mdns.TypeA)
		q.Id = id
		lc.sent++
		t0 := time.Now()
		if err := sandbox.Do(tg.ns, func() error { return oneLookup(q) }); err != nil {
			fail(fmt.Errorf("%s: %w", tg.name, err))
		} else {
			lc.slowest = max(lc.slowest, time.Since(t0))
		}
		time.Sleep(time.Millisecond)
	}
}

// oneLookup sends q to 127.0.0.11:53 from a new socket and waits for an
// answer with an address.
func oneLookup(q *mdns.Msg) error {
	c, err := mdns.Dial("udp4", "127.0.0.11:53")
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(lookupTimeout))
	if err := c.WriteMsg(q); err != nil {
		return err
	}
	for {
		m, err := c.ReadMsg()
		if err != nil {
			return err
		}
		if m.Id != q.Id {
			continue
		}
		if m.Rcode != mdns.RcodeSuccess || len(m.Answer) == 0 {
			return fmt.Errorf("answer %s with %d records", mdns.RcodeToString[m.Rcode], len(m.Answer))
		}
		return nil
	}
}

// flowCount is what probeFlows saw.
type flowCount struct {
	sent, lost int
	err        string // the first error that was not a lost echo
}

// Probe flows take their source ports in turn from this range, so that
// no two share a conntrack tuple within a run (3,000–4,000 flows; the
// kernel's own pick repeated one in twenty): a repeat would match the
// earlier flow's entry and skip the NAT rules of a new one.
const (
	firstFlowPort = 20000
	flowPorts     = 30000
)

// probeFlows opens new UDP flows from the namespace at ns to at, one
// after the other with a millisecond between, until quit; each sends one
// datagram and waits up to flowTimeout for its echo, so a restart that
// cut the path would cost a flow every flowTimeout.
func probeFlows(ns string, at netip.AddrPort, quit <-chan struct{}) flowCount {
	var fc flowCount
	err := sandbox.Do(ns, func() error {
		buf := make([]byte, 8)
		for seq := uint64(0); ; seq++ {
			select {
			case <-quit:
				return nil
			default:
			}
			fc.sent++
			src := netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(firstFlowPort+seq%flowPorts))
			if echoed, err := oneFlow(src, at, seq, buf); !echoed {
				fc.lost++
				if err != nil && fc.err == "" {
					fc.err = err.Error()
				}
			}
			time.Sleep(time.Millisecond)
		}
	})
	if err != nil && fc.err == "" {
		fc.err = err.Error()
	}
	return fc
}

// oneFlow sends seq from a new socket bound at src and reports whether it
// came back; err is set when the flow could not even be sent (a lost
// echo is no error).
func oneFlow(src, at netip.AddrPort, seq uint64, buf []byte) (bool, error) {
	c, err := net.DialUDP("udp4", net.UDPAddrFromAddrPort(src), net.UDPAddrFromAddrPort(at))
	if err != nil {
		return false, err
	}
	defer c.Close()
	binary.BigEndian.PutUint64(buf, seq)
	if _, err := c.Write(buf); err != nil {
		return false, err
	}
	c.SetReadDeadline(time.Now().Add(flowTimeout))
	for {
		n, err := c.Read(buf)
		if err != nil {
			return false, nil
		}
		if n == 8 && binary.BigEndian.Uint64(buf) == seq {
			return true, nil
		}
	}
}

// echoServer echoes UDP datagrams at at, in the namespace at ns, until
// the returned stop.
func echoServer(ns string, at netip.AddrPort) (stop func(), err error) {
	var c *net.UDPConn
	err = sandbox.Do(ns, func() error {
		var err error
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(at))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("echo server on %s: %w", at, err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 64)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err == nil {
				c.WriteToUDPAddrPort(buf[:n], from)
			}
		}
	})
	return func() { c.Close(); wg.Wait() }, nil
}
