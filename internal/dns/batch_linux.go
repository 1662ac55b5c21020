package dns

import (
	"errors"
	"github.com/berth-net/berth/internal/mmsg"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchConn moves datagrams of one IPv4 UDP socket in batches with
// recvmmsg and sendmmsg, through Go's network poller (the goroutine parks
// while nothing is queued). Its headers, addresses and buffers are made
// once, so a batch allocates nothing: golang.org/x/net/ipv4's ReadBatch
// allocates a net.UDPAddr per datagram. Not safe for concurrent use: one
// goroutine reads and answers.
type batchConn struct {
	rc syscall.RawConn

	in    []unix.Mmsghdr
	inIov []unix.Iovec
	from  []unix.RawSockaddrInet4
	bufs  [][]byte

	out    []unix.Mmsghdr
	outIov []unix.Iovec
	to     []unix.RawSockaddrInet4
	nOut   int
}

func newBatchConn(c *net.UDPConn, batch, bufSize int) (*batchConn, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	b := &batchConn{
		rc: rc,
		in: make([]unix.Mmsghdr, batch), inIov: make([]unix.Iovec, batch),
		from: make([]unix.RawSockaddrInet4, batch), bufs: make([][]byte, batch),
		out: make([]unix.Mmsghdr, batch), outIov: make([]unix.Iovec, batch),
		to: make([]unix.RawSockaddrInet4, batch),
	}
	for i := range batch {
		b.bufs[i] = make([]byte, bufSize)
		b.inIov[i].Base = &b.bufs[i][0]
		b.inIov[i].SetLen(bufSize)
		b.in[i].Hdr.Iov = &b.inIov[i]
		b.in[i].Hdr.SetIovlen(1)
		b.in[i].Hdr.Name = (*byte)(unsafe.Pointer(&b.from[i]))
		b.out[i].Hdr.Iov = &b.outIov[i]
		b.out[i].Hdr.SetIovlen(1)
		b.out[i].Hdr.Name = (*byte)(unsafe.Pointer(&b.to[i]))
		b.out[i].Hdr.Namelen = unix.SizeofSockaddrInet4
	}
	return b, nil
}

// read waits for at least one datagram and takes in as many as are
// queued, up to the batch size; it returns how many. Datagrams cut short
// by the buffer come back with an empty payload.
func (b *batchConn) read() (int, error) {
	for i := range b.in {
		b.in[i].Hdr.Namelen = unix.SizeofSockaddrInet4
		b.in[i].Hdr.Flags = 0
	}
	return mmsg.Recv(b.rc, b.in)
}

// payload is datagram i of the last read, and where it came from.
func (b *batchConn) payload(i int) ([]byte, netip.AddrPort) {
	h := &b.in[i]
	from := netip.AddrPortFrom(netip.AddrFrom4(b.from[i].Addr), ntohs(b.from[i].Port))
	if h.Hdr.Flags&unix.MSG_TRUNC != 0 {
		return nil, from
	}
	return b.bufs[i][:h.Len], from
}

// queue adds an answer to datagram i of the last read to the next flush;
// p must stay untouched until then.
func (b *batchConn) queue(i int, p []byte) {
	k := b.nOut
	b.to[k] = b.from[i]
	b.outIov[k].Base = &p[0]
	b.outIov[k].SetLen(len(p))
	b.nOut++
}

// flush sends what was queued, as few sendmmsg calls as the kernel allows.
// A datagram the kernel refuses is dropped (as a lost answer; the client
// asks again) and the rest still go.
func (b *batchConn) flush() error {
	var err error
	for sent := 0; sent < b.nOut; {
		n, serr := mmsg.Send(b.rc, b.out[sent:b.nOut])
		var errno syscall.Errno
		switch {
		case errors.As(serr, &errno):
			err, n = serr, 1 // the kernel refused the first: skip it
		case serr != nil:
			err = serr
			sent = b.nOut
		}
		sent += n
	}
	for i := range b.nOut {
		b.outIov[i].Base = nil // let the answers' buffers go
	}
	b.nOut = 0
	return err
}

func ntohs(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}
