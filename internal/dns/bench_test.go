package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// BenchmarkAnswerPath is the resolver's CPU work per local query: decode,
// look up, build and encode the answer (no sockets).
func BenchmarkAnswerPath(b *testing.B) {
	names := newFakeNames()
	names.add("sb", "target", "", "10.0.0.2")
	packed, err := query("target", mdns.TypeA).Pack()
	if err != nil {
		b.Fatal(err)
	}
	out := make([]byte, 0, mdns.MaxMsgSize)
	b.ReportAllocs()
	for b.Loop() {
		q := new(mdns.Msg)
		if err := q.Unpack(packed); err != nil {
			b.Fatal(err)
		}
		resp := answerLocal(q, names, "sb", clientLimit(q, "udp"))
		if _, err := resp.PackBuffer(out); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFastPath is the same work on the fast path: read the query's
// bytes, look the name up, write the answer's bytes.
func BenchmarkFastPath(b *testing.B) {
	names := newFakeNames()
	names.add("sb", "target", "", "10.0.0.2")
	packed, err := query("target", mdns.TypeA).Pack()
	if err != nil {
		b.Fatal(err)
	}
	r := &Resolver{sandboxID: "sb", names: names, interned: map[string]string{}}
	var nameBuf [maxNameLen]byte
	out := make([]byte, arenaSize)
	b.ReportAllocs()
	for b.Loop() {
		if r.answerFast(packed, out, &nameBuf) == 0 {
			b.Fatal("fast path declined")
		}
	}
}

// BenchmarkFastPathAAAA is BenchmarkFastPath for the IPv6 address of a
// dual-stack name.
func BenchmarkFastPathAAAA(b *testing.B) {
	names := newFakeNames()
	names.add("sb", "target", "", "10.0.0.2", "fd00::2")
	packed, err := query("target", mdns.TypeAAAA).Pack()
	if err != nil {
		b.Fatal(err)
	}
	r := &Resolver{sandboxID: "sb", names: names, interned: map[string]string{}}
	var nameBuf [maxNameLen]byte
	out := make([]byte, arenaSize)
	b.ReportAllocs()
	for b.Loop() {
		if r.answerFast(packed, out, &nameBuf) == 0 {
			b.Fatal("fast path declined")
		}
	}
}

// BenchmarkResolverUDP is a resolver on loopback in this process, asked
// by 1 or 16 clients at a time (each one query after the other): the
// socket path without a container around it.
func BenchmarkResolverUDP(b *testing.B) {
	names := newFakeNames()
	names.add("sb1", "target", "", "10.0.0.2")
	var at netip.AddrPort
	m := NewManager(Config{Names: names, Listen: loopbackListen(nil, &at)})
	b.Cleanup(func() { m.Close() })
	if err := m.Start(Sandbox{ID: "sb1"}); err != nil {
		b.Fatal(err)
	}
	packed, err := query("target", mdns.TypeA).Pack()
	if err != nil {
		b.Fatal(err)
	}
	for _, inFlight := range []int{1, 16} {
		b.Run(fmt.Sprintf("inflight=%d", inFlight), func(b *testing.B) {
			conns := make([]*net.UDPConn, inFlight)
			for i := range conns {
				c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(at))
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				conns[i] = c
			}
			var wg sync.WaitGroup
			b.ResetTimer()
			for i, c := range conns {
				n := b.N / inFlight
				if i < b.N%inFlight {
					n++
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					q := slices.Clone(packed)
					buf := make([]byte, 1500)
					for j := 0; j < n; j++ {
						binary.BigEndian.PutUint16(q, uint16(j))
						if _, err := c.Write(q); err != nil {
							b.Error(err)
							return
						}
						c.SetReadDeadline(time.Now().Add(time.Second))
						if _, err := c.Read(buf); errors.Is(err, os.ErrDeadlineExceeded) {
							j-- // lost in an overflowing socket buffer: ask again
						} else if err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
		})
	}
}

// BenchmarkForward is one forwarded exchange with an upstream on loopback
// in this process (no resolver socket in front of it).
func BenchmarkForward(b *testing.B) {
	up := startUpstream(b, mdns.RcodeNameError)
	f := newForwarder(DefaultTimeout, slog.New(slog.DiscardHandler))
	q := query("example.test", mdns.TypeA)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if resp := f.forward(context.Background(), q, "udp", []netip.AddrPort{up.addr}); resp.Rcode != mdns.RcodeSuccess {
				b.Errorf("rcode %d", resp.Rcode)
				return
			}
		}
	})
}
