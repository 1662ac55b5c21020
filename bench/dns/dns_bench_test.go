// Package dnsbench measures berth's embedded DNS resolver from inside a
// container: queries per second one at a time and with 16 in flight, and
// the latency percentiles, for berth's own names and for forwarded ones.
// "16 in flight" is taken two ways: 16 clients with a socket each, each
// waiting for its answer (run), and one pipelined client that keeps 16
// queries outstanding on one socket, as dnsperf does (pipeline_test.go).
//
// Run it as root in a private namespace (it builds a test world):
//
//	go build -o /tmp/berth ./cmd/berth
//	BERTH_BIN=/tmp/berth unshare --net --mount --fork -- bash -c \
//	  'ip link set lo up; go test -run "^$" -bench . -benchtime 200000x ./bench/dns/'
//
// The client's sockets are made inside the container's network namespace
// (on a thread that entered it, through sandbox.Do) and used from ordinary
// goroutines, so each query goes container → 127.0.0.11:53 exactly as a
// process in the container sends it; the busybox container only holds the
// namespace.
package dnsbench

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"golang.org/x/net/ipv4"

	"github.com/berth-net/berth/internal/sandbox"
	"github.com/berth-net/berth/internal/testworld"
)

// Docker 20.10's figures on these machines (issue 6), for the ratio column.
const (
	dockerSequential = 8000  // top of 6,000–8,000
	dockerInFlight16 = 32000 // top of 22,000–32,000
)

// result is one row of the table.
type result struct {
	name     string
	inFlight int
	queries  int
	elapsed  time.Duration
	lat      []time.Duration
	resent   int // queries given up as lost after retryAfter and sent again
}

func (r result) qps() float64 { return float64(r.queries) / r.elapsed.Seconds() }

func (r result) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	s := slices.Clone(r.lat)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// world is one daemon with two containers on a user network and an
// upstream name server in the outside world.
type world struct {
	ns     string // the client container's network namespace, as this process sees it
	hostNS string // the daemon's namespace, where forwarded queries leave from
}

var (
	resultsMu sync.Mutex
	results   = map[string]result{}
)

// setup runs once, in the parent benchmark: the sub-benchmarks share it.
func setup(b *testing.B) *world {
	w := testworld.New(b)
	conf := startUpstream(b, w)
	w.Start(b, "--resolv-conf", conf)
	w.Busybox(b)
	w.MustBerth(b, "network", "create", "benchnet")
	for _, name := range []string{"client", "target"} {
		w.MustBerth(b, "run", "-d", "--name", name, "--network", "benchnet", "--network-alias", "svc",
			testworld.BusyboxImage, "sh", "-c", "while true; do sleep 3600; done")
	}
	key := strings.TrimSpace(w.MustBerth(b, "inspect", "--format", "{{.NetworkSettings.SandboxKey}}", "client"))
	return &world{ns: w.HostPath(key), hostNS: w.HostNS()}
}

// startUpstream serves example.test → 203.0.113.10 on 203.0.113.10:53 in
// the outside world and returns a resolv.conf naming it.
func startUpstream(b *testing.B, w *testworld.World) string {
	var pc net.PacketConn
	err := sandbox.Do(w.OutsideNS, func() error {
		var err error
		pc, err = net.ListenPacket("udp4", netip.AddrPortFrom(testworld.ServerAddr, 53).String())
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	srv := &mdns.Server{PacketConn: pc, Handler: mdns.HandlerFunc(func(rw mdns.ResponseWriter, q *mdns.Msg) {
		resp := new(mdns.Msg).SetReply(q)
		resp.Answer = append(resp.Answer, &mdns.A{Hdr: mdns.RR_Header{Name: q.Question[0].Name, Rrtype: mdns.TypeA,
			Class: mdns.ClassINET, Ttl: 60}, A: net.IP(testworld.ServerAddr.AsSlice())})
		rw.WriteMsg(resp)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	b.Cleanup(func() { srv.Shutdown() })
	conf := w.Dir + "/bench-resolv.conf"
	if err := os.WriteFile(conf, []byte("nameserver "+testworld.ServerAddr.String()+"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	return conf
}

// client is one UDP socket made inside the container's namespace and
// connected to the resolver, with its query packed once.
type client struct {
	conn  *net.UDPConn
	query []byte
	buf   []byte
}

// dialIn opens a UDP socket inside the namespace at ns, connected to to.
func dialIn(b *testing.B, ns string, to netip.AddrPort) *net.UDPConn {
	b.Helper()
	var conn *net.UDPConn
	err := sandbox.Do(ns, func() error {
		var err error
		conn, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(to))
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return conn
}

func newClient(b *testing.B, ns, name string, to netip.AddrPort) *client {
	conn := dialIn(b, ns, to)
	q := new(mdns.Msg).SetQuestion(mdns.Fqdn(name), mdns.TypeA)
	packed, err := q.Pack()
	if err != nil {
		b.Fatal(err)
	}
	return &client{conn: conn, query: packed, buf: make([]byte, 1500)}
}

// retryAfter is when a client gives a query up as lost (the kernel drops
// datagrams when a socket's buffer overflows) and sends it again, as a
// stub resolver would; lost queries are counted, not hidden.
const retryAfter = time.Second

// ask sends one query with a fresh ID and waits for its answer, which
// must be NOERROR with at least one record; it returns how many times the
// query had to be sent again.
func (c *client) ask(id uint16) (resent int, err error) {
	binary.BigEndian.PutUint16(c.query, id)
	for {
		if _, err := c.conn.Write(c.query); err != nil {
			return resent, err
		}
		err := c.await(id)
		if errors.Is(err, os.ErrDeadlineExceeded) && resent < 5 {
			resent++
			continue
		}
		return resent, err
	}
}

func (c *client) await(id uint16) error {
	if err := c.conn.SetReadDeadline(time.Now().Add(retryAfter)); err != nil {
		return err
	}
	for {
		n, err := c.conn.Read(c.buf)
		if err != nil {
			return err
		}
		if n < 12 || binary.BigEndian.Uint16(c.buf) != id {
			continue // a late answer to an earlier query
		}
		if rcode := c.buf[3] & 0x0f; rcode != 0 {
			return fmt.Errorf("rcode %d", rcode)
		}
		if binary.BigEndian.Uint16(c.buf[6:]) == 0 {
			return fmt.Errorf("no answers")
		}
		return nil
	}
}

// run sends b.N queries for name over inFlight sockets, each one query at
// a time, and records the latencies.
func run(b *testing.B, ns, label, name string, to netip.AddrPort, inFlight int) {
	clients := make([]*client, inFlight)
	for i := range clients {
		clients[i] = newClient(b, ns, name, to)
		defer clients[i].conn.Close()
		if _, err := clients[i].ask(1); err != nil { // warm: the first answer is checked
			b.Fatalf("%s: first query: %v", label, err)
		}
	}
	lats := make([][]time.Duration, inFlight)
	errs := make([]error, inFlight)
	resent := make([]int, inFlight)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i, c := range clients {
		n := b.N / inFlight
		if i < b.N%inFlight {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := make([]time.Duration, 0, n)
			for j := 0; j < n; j++ {
				t0 := time.Now()
				k, err := c.ask(uint16(j + 2))
				resent[i] += k
				if err != nil {
					errs[i] = err
					return
				}
				l = append(l, time.Since(t0))
			}
			lats[i] = l
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	for _, err := range errs {
		if err != nil {
			b.Fatalf("%s: %v", label, err)
		}
	}
	r := result{name: label, inFlight: inFlight, queries: b.N, elapsed: elapsed, lat: slices.Concat(lats...)}
	for _, k := range resent {
		r.resent += k
	}
	record(b, r)
}

// record reports r and keeps it for the table.
func record(b *testing.B, r result) {
	b.ReportMetric(r.qps(), "queries/s")
	b.ReportMetric(float64(r.pct(0.50).Microseconds()), "p50-µs")
	b.ReportMetric(float64(r.pct(0.99).Microseconds()), "p99-µs")
	resultsMu.Lock()
	results[r.name] = r // the last (largest) run of each case stays
	resultsMu.Unlock()
}

func BenchmarkResolver(b *testing.B) {
	w := setup(b)
	resolver := netip.MustParseAddrPort("127.0.0.11:53")
	echo := startEcho(b, w.ns)
	upstream := netip.AddrPortFrom(testworld.ServerAddr, 53)
	cases := []struct {
		label, name string
		to          netip.AddrPort
		inFlight    int
		fromHost    bool // ask from the daemon's namespace, not the container's
		pipelined   bool // one socket keeps inFlight queries outstanding (dnsperf's way)
	}{
		{"berth name, sequential", "target", resolver, 1, false, false},
		{"berth name, 16 in flight", "target", resolver, 16, false, false},
		{"berth name, 16 in flight, pipelined client", "target", resolver, 16, false, true},
		{"shared alias (2 addresses), 16 in flight", "svc", resolver, 16, false, false},
		{"floor: UDP echo process in the container, sequential", "target", echo, 1, false, false},
		{"floor: UDP echo process in the container, 16 in flight", "target", echo, 16, false, false},
		{"floor: UDP echo process in the container, 16 in flight, pipelined client", "target", echo, 16, false, true},
		{"forwarded upstream, sequential", "example.test", resolver, 1, false, false},
		{"forwarded upstream, 16 in flight", "example.test", resolver, 16, false, false},
		{"forwarded upstream, 16 in flight, pipelined client", "example.test", resolver, 16, false, true},
		{"floor: upstream asked from the host, sequential", "example.test", upstream, 1, true, false},
		{"floor: upstream asked from the host, 16 in flight", "example.test", upstream, 16, true, false},
		{"floor: upstream asked from the host, 16 in flight, pipelined client", "example.test", upstream, 16, true, true},
	}
	var labels []string
	for _, c := range cases {
		labels = append(labels, c.label)
		b.Run(strings.NewReplacer(" ", "_", ",", "", "(", "", ")", "", ":", "").Replace(c.label), func(b *testing.B) {
			ns := w.ns
			if c.fromHost {
				ns = w.hostNS
			}
			if c.pipelined {
				runPipelined(b, ns, c.label, c.name, c.to, c.inFlight)
				return
			}
			run(b, ns, c.label, c.name, c.to, c.inFlight)
		})
	}
	fmt.Print("\n" + table(labels...))
}

// echoEnv makes the test binary an echo server (see TestMain).
const echoEnv = "BERTH_DNSBENCH_ECHO"

// TestMain runs the binary as the floor's echo server when asked to, and
// as the benchmark otherwise.
func TestMain(m *testing.M) {
	if at := os.Getenv(echoEnv); at != "" {
		if err := serveEcho(at); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	testworld.RemoveBinary()
	os.Exit(code)
}

// serveEcho answers every datagram on at with itself turned into an
// answer with one record, doing no DNS work, until stdin closes. It moves
// datagrams in batches (recvmmsg/sendmmsg) as the resolver does, so that
// the floor is the kernel's and the client's cost, not one system call
// per datagram.
func serveEcho(at string) error {
	conn, err := net.ListenPacket("udp4", at)
	if err != nil {
		return err
	}
	go func() {
		pc := ipv4.NewPacketConn(conn)
		msgs := make([]ipv4.Message, 16)
		for i := range msgs {
			msgs[i].Buffers = [][]byte{make([]byte, 1500)}
		}
		for {
			n, err := pc.ReadBatch(msgs, 0)
			if err != nil {
				return
			}
			for i := range n {
				m := &msgs[i]
				buf := m.Buffers[0]
				buf[2] |= 0x80                         // QR: an answer
				binary.BigEndian.PutUint16(buf[6:], 1) // "one answer", enough for the client's check
				m.Buffers[0] = buf[:m.N]
			}
			for sent := 0; sent < n; {
				k, err := pc.WriteBatch(msgs[sent:n], 0)
				if err != nil {
					break
				}
				sent += k
			}
			for i := range n {
				msgs[i].Buffers[0] = msgs[i].Buffers[0][:cap(msgs[i].Buffers[0])]
			}
		}
	}()
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	return conn.Close()
}

// startEcho runs the floor: this binary as a UDP echo server in a process
// of its own inside the container's namespace, as the daemon is a process
// of its own: the cost of this client, this kernel path and Go's network
// poller across two processes, without DNS.
func startEcho(b *testing.B, ns string) netip.AddrPort {
	at := netip.MustParseAddrPort("127.0.0.12:53")
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command("nsenter", "--net="+ns, "--", self)
	cmd.Env = append(os.Environ(), echoEnv+"="+at.String())
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		b.Fatalf("echo server did not start: %q, %v", line, err)
	}
	return at
}

// table prints the results as the lead's tables want them, with the ratio
// to Docker's figures for the two cases the issue names.
func table(labels ...string) string {
	resultsMu.Lock()
	defer resultsMu.Unlock()
	var s strings.Builder
	s.WriteString("| case | queries | lost | queries/s | p50 | p99 | vs Docker 20.10 |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, l := range labels {
		r, ok := results[l]
		if !ok {
			continue
		}
		ratio := "–"
		switch l {
		case "berth name, sequential":
			ratio = fmt.Sprintf("%.1f× (%d)", r.qps()/dockerSequential, dockerSequential)
		case "berth name, 16 in flight", "berth name, 16 in flight, pipelined client":
			ratio = fmt.Sprintf("%.1f× (%d)", r.qps()/dockerInFlight16, dockerInFlight16)
		}
		fmt.Fprintf(&s, "| %s | %d | %d | %.0f | %v | %v | %s |\n", r.name, r.queries, r.resent, r.qps(),
			r.pct(0.50).Round(time.Microsecond), r.pct(0.99).Round(time.Microsecond), ratio)
	}
	return s.String()
}
