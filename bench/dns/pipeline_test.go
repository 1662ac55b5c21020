package dnsbench

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/berth-net/berth/internal/mmsg"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// pipeline is the other client: one socket that keeps inFlight queries
// outstanding, as dnsperf does, instead of inFlight sockets each waiting
// for its answer on a goroutine of its own. Each answer is checked as the
// simple client checks it (its ID is outstanding, it asks the same
// question, NOERROR, at least one record) and replaced at once by a fresh
// query; the answers that arrived together are taken in one recvmmsg and
// their replacements sent in one sendmmsg. The resolver sees the same
// load (inFlight questions waiting at every moment); the client spends
// less of the two CPUs it shares with the resolver on Go's scheduler.
type pipeline struct {
	conn     *net.UDPConn
	rc       syscall.RawConn
	inFlight int
	query    []byte // packed once; the ID is rewritten per query
	question []byte // the query's question section, which answers must echo

	ids  []uint16    // per slot: the ID outstanding
	sent []time.Time // per slot: when it was sent

	in    []unix.Mmsghdr
	inIov []unix.Iovec
	bufs  [][]byte

	out    []unix.Mmsghdr
	outIov []unix.Iovec
	qbufs  [][]byte // per slot: the query as sent
}

func newPipeline(b *testing.B, ns, name string, to netip.AddrPort, inFlight int) *pipeline {
	conn := dialIn(b, ns, to)
	rc, err := conn.SyscallConn()
	if err != nil {
		b.Fatal(err)
	}
	q, err := new(mdns.Msg).SetQuestion(mdns.Fqdn(name), mdns.TypeA).Pack()
	if err != nil {
		b.Fatal(err)
	}
	p := &pipeline{
		conn: conn, rc: rc, inFlight: inFlight, query: q, question: q[12:],
		ids: make([]uint16, inFlight), sent: make([]time.Time, inFlight),
		in: make([]unix.Mmsghdr, inFlight), inIov: make([]unix.Iovec, inFlight), bufs: make([][]byte, inFlight),
		out: make([]unix.Mmsghdr, inFlight), outIov: make([]unix.Iovec, inFlight), qbufs: make([][]byte, inFlight),
	}
	for i := range inFlight {
		p.bufs[i] = make([]byte, 1500)
		p.inIov[i].Base = &p.bufs[i][0]
		p.inIov[i].SetLen(len(p.bufs[i]))
		p.in[i].Hdr.Iov = &p.inIov[i]
		p.in[i].Hdr.SetIovlen(1)
		p.qbufs[i] = bytes.Clone(q)
		p.outIov[i].Base = &p.qbufs[i][0]
		p.outIov[i].SetLen(len(q))
		p.out[i].Hdr.Iov = &p.outIov[i]
		p.out[i].Hdr.SetIovlen(1)
	}
	return p
}

// slotOf maps an ID to the slot it was sent from: slot s sends the IDs
// s, s+inFlight, s+2·inFlight, … (mod 2¹⁶), so an ID names its slot.
func (p *pipeline) slotOf(id uint16) int { return int(id) % p.inFlight }

// nextID is the slot's next ID.
func (p *pipeline) nextID(slot int) uint16 {
	step := uint16(p.inFlight)
	id := p.ids[slot] + step
	if int(id)%p.inFlight != slot { // wrapped past 2¹⁶
		id = uint16(slot)
	}
	return id
}

// run sends n queries, inFlight at a time, and returns their latencies
// and how many had to be sent again after retryAfter.
func (p *pipeline) run(n int) ([]time.Duration, int, error) {
	lats := make([]time.Duration, 0, n)
	sent, resent := 0, 0
	// Fill the pipeline.
	var queue []int
	for s := range min(p.inFlight, n) {
		p.ids[s] = uint16(s)
		queue = append(queue, s)
	}
	if err := p.send(queue); err != nil {
		return nil, 0, err
	}
	sent = len(queue)
	outstanding := len(queue)
	for outstanding > 0 {
		if err := p.conn.SetReadDeadline(time.Now().Add(retryAfter)); err != nil {
			return nil, 0, err
		}
		k, err := p.recv()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// Lost (an overflowing socket buffer): send every slot again.
			queue = queue[:0]
			for s := range p.inFlight {
				if !p.sent[s].IsZero() {
					queue = append(queue, s)
				}
			}
			if resent += len(queue); resent > 5*p.inFlight {
				return nil, resent, fmt.Errorf("%d queries lost", resent)
			}
			if err := p.send(queue); err != nil {
				return nil, resent, err
			}
			continue
		} else if err != nil {
			return nil, resent, err
		}
		now := time.Now()
		queue = queue[:0]
		for i := range k {
			ans := p.bufs[i][:p.in[i].Len]
			if len(ans) < 12 {
				continue
			}
			id := binary.BigEndian.Uint16(ans)
			s := p.slotOf(id)
			if p.ids[s] != id || p.sent[s].IsZero() {
				continue // a late answer to a query sent again
			}
			if err := p.check(ans); err != nil {
				return nil, resent, err
			}
			lats = append(lats, now.Sub(p.sent[s]))
			p.sent[s] = time.Time{}
			outstanding--
			if sent < n {
				p.ids[s] = p.nextID(s)
				queue = append(queue, s)
				sent++
				outstanding++
			}
		}
		if err := p.send(queue); err != nil {
			return nil, resent, err
		}
	}
	return lats, resent, nil
}

// check holds an answer to what the simple client demands, and to the
// question asked.
func (p *pipeline) check(ans []byte) error {
	if ans[2]&0x80 == 0 {
		return fmt.Errorf("not an answer")
	}
	if rcode := ans[3] & 0x0f; rcode != 0 {
		return fmt.Errorf("rcode %d", rcode)
	}
	if binary.BigEndian.Uint16(ans[6:]) == 0 {
		return fmt.Errorf("no answers")
	}
	if !bytes.HasPrefix(ans[12:], p.question) {
		return fmt.Errorf("answer to another question")
	}
	return nil
}

// send sends the queries of the slots given, in one sendmmsg when it can.
func (p *pipeline) send(slots []int) error {
	now := time.Now()
	for i, s := range slots {
		binary.BigEndian.PutUint16(p.qbufs[s], p.ids[s])
		p.sent[s] = now
		p.out[i].Hdr.Iov = &p.outIov[s]
	}
	for done := 0; done < len(slots); {
		n, err := mmsg.Send(p.rc, p.out[done:len(slots)])
		if err != nil {
			return err
		}
		done += n
	}
	return nil
}

// recv waits for at least one answer and takes every one queued.
func (p *pipeline) recv() (int, error) {
	return mmsg.Recv(p.rc, p.in)
}

// runPipelined is run with the pipelined client.
func runPipelined(b *testing.B, ns, label, name string, to netip.AddrPort, inFlight int) {
	p := newPipeline(b, ns, name, to, inFlight)
	defer p.conn.Close()
	if _, _, err := p.run(inFlight); err != nil { // warm: the first answers are checked
		b.Fatalf("%s: first queries: %v", label, err)
	}
	b.ResetTimer()
	start := time.Now()
	lats, resent, err := p.run(b.N)
	elapsed := time.Since(start)
	b.StopTimer()
	if err != nil {
		b.Fatalf("%s: %v", label, err)
	}
	record(b, result{name: label, inFlight: inFlight, queries: b.N, elapsed: elapsed, lat: lats, resent: resent})
}
