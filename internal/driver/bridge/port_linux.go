package bridge

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"unsafe"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/driverapi"
)

// portSocket is a route-netlink socket of the driver's own in the host
// namespace, for the requests the netlink library cannot make: a pair
// created already attached with both indexes echoed back, and several
// changes to a link in one message. Requests on it are serialised.
type portSocket struct {
	mu      sync.Mutex
	sock    *routeSocket
	pending uint32 // the group a new host end starts in (Groups.Pending)
}

func openPortSocket(hostNetns string, pending uint32) (*portSocket, error) {
	sock, err := routeSocketIn(hostNetns)
	if err != nil {
		return nil, err
	}
	return &portSocket{sock: sock, pending: pending}, nil
}

// routeSocket is a route-netlink socket as one handle, so that its
// sequence numbers advance from request to request, with its port ID,
// which the kernel assigned when the socket was bound and which every
// reply carries (looked up once: a getsockname per request was one system
// call in ten of a connect).
type routeSocket struct {
	*nl.SocketHandle
	pid uint32
}

// routeSocketIn opens a route-netlink socket of its own in the namespace
// at path ("" = the caller's).
func routeSocketIn(path string) (*routeSocket, error) {
	ns := netns.None()
	if path != "" {
		var err error
		if ns, err = netns.GetFromPath(path); err != nil {
			return nil, err
		}
		defer ns.Close()
	}
	sock, err := nl.GetNetlinkSocketAt(ns, netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	pid, err := sock.GetPid()
	if err != nil {
		sock.Close()
		return nil, err
	}
	return &routeSocket{SocketHandle: &nl.SocketHandle{Socket: sock}, pid: pid}, nil
}

func (p *portSocket) close() { p.sock.Socket.Close() }

// createVeth makes the pair of spec in one RTM_NEWLINK: the host end up,
// with the MTU and as a port of the bridge at brIndex (IFLA_MASTER, which
// the kernel applies at creation and undoes the whole pair if it fails),
// the peer in the namespace open as nsFD with its name, MAC and MTU. With
// NLM_F_ECHO the kernel sends the new host end back: its index and, in
// IFLA_LINK, the peer's. host's index is 0 when the kernel echoed nothing.
//
// Both ends ask for one TX and one RX queue. Without them the kernel gives
// a veth a queue per possible CPU and then (veth_init_queues) cuts the
// active ones to one, on devices already registered: each cut waits for an
// expedited RCU grace period (synchronize_net) while holding the RTNL
// lock, twice per pair, which the naive attach (and Docker's, and CNI's)
// pays. Profiled here on 2 CPUs, BenchmarkJoinBurst p50 0.66-0.84 →
// 0.58-0.66 ms (three alternating pairs). One queue is all a veth uses
// unless XDP or GRO is turned on for it, which berth does not do.
func (p *portSocket) createVeth(spec driverapi.EndpointSpec, brIndex, nsFD int) (host netlink.Link, peerIndex int, err error) {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK|unix.NLM_F_ECHO)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Flags, msg.Change = unix.IFF_UP, unix.IFF_UP
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(spec.HostIfName)))
	if spec.MTU > 0 {
		req.AddData(nl.NewRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(spec.MTU))))
	}
	req.AddData(nl.NewRtAttr(unix.IFLA_MASTER, nl.Uint32Attr(uint32(brIndex))))
	req.AddData(nl.NewRtAttr(unix.IFLA_GROUP, nl.Uint32Attr(p.pending)))
	req.AddData(nl.NewRtAttr(unix.IFLA_NUM_TX_QUEUES, nl.Uint32Attr(1)))
	req.AddData(nl.NewRtAttr(unix.IFLA_NUM_RX_QUEUES, nl.Uint32Attr(1)))
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("veth"))
	data := info.AddRtAttr(nl.IFLA_INFO_DATA, nil)
	peer := data.AddRtAttr(nl.VETH_INFO_PEER, nil)
	nl.NewIfInfomsgChild(peer, unix.AF_UNSPEC) // down: a veth end cannot open before its peer exists (ENOTCONN)
	peer.AddRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(spec.IfName))
	peer.AddRtAttr(unix.IFLA_ADDRESS, spec.MAC)
	if spec.MTU > 0 {
		peer.AddRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(spec.MTU)))
	}
	peer.AddRtAttr(unix.IFLA_NUM_TX_QUEUES, nl.Uint32Attr(1))
	peer.AddRtAttr(unix.IFLA_NUM_RX_QUEUES, nl.Uint32Attr(1))
	peer.AddRtAttr(unix.IFLA_NET_NS_FD, nl.Uint32Attr(uint32(nsFD)))
	req.AddData(info)

	host = &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: spec.HostIfName, MTU: spec.MTU, MasterIndex: brIndex}}
	p.mu.Lock()
	defer p.mu.Unlock()
	results, echoes, err := sendBatch(p.sock, req)
	if err == nil {
		err = results[0]
	}
	for _, m := range echoes {
		if l, ok := parseEchoedLink(m); ok && l.Name == spec.HostIfName {
			host, peerIndex = &netlink.Veth{LinkAttrs: l}, l.ParentIndex
		}
	}
	return host, peerIndex, err
}

// parseEchoedLink reads what Join needs of an echoed RTM_NEWLINK: the
// index, name, MTU and master of the link, and in ParentIndex its peer's
// index (IFLA_LINK). netlink.LinkDeserialize decodes every attribute of
// the link, statistics included, by reflection: 2 % of a connect's CPU.
func parseEchoedLink(b []byte) (netlink.LinkAttrs, bool) {
	var l netlink.LinkAttrs
	if len(b) < unix.SizeofIfInfomsg {
		return l, false
	}
	l.Index = int(int32(nl.NativeEndian().Uint32(b[4:8])))
	for b = b[unix.SizeofIfInfomsg:]; len(b) >= unix.SizeofRtAttr; {
		n := int(nl.NativeEndian().Uint16(b[0:2]))
		if n < unix.SizeofRtAttr || n > len(b) {
			return l, false
		}
		v := b[unix.SizeofRtAttr:n]
		switch nl.NativeEndian().Uint16(b[2:4]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER) {
		case unix.IFLA_IFNAME:
			l.Name = string(bytes.TrimRight(v, "\x00"))
		case unix.IFLA_MTU:
			if len(v) >= 4 {
				l.MTU = int(nl.NativeEndian().Uint32(v))
			}
		case unix.IFLA_MASTER:
			if len(v) >= 4 {
				l.MasterIndex = int(nl.NativeEndian().Uint32(v))
			}
		case unix.IFLA_LINK:
			if len(v) >= 4 {
				l.ParentIndex = int(nl.NativeEndian().Uint32(v))
			}
		}
		b = b[min(nlAlign(n), len(b)):]
	}
	return l, l.Index > 0
}

// nlAlign rounds a netlink length up to the 4-byte boundary.
func nlAlign(n int) int { return (n + 3) &^ 3 }

// setUpPort finishes a host end that was made a bridge port at creation,
// in one RTM_NEWLINK (two netlink round trips fewer than one call each):
// its owner alias, and out of pendingGroup (the alias marks it berth's
// from now on); and hairpin mode on its bridge port
// (IFLA_INFO_SLAVE_DATA, which the kernel applies to a link that already
// has a master). Its IPv6 needs nothing here: disableHostIPv6 turns it off
// before the peer comes up and gives the link a carrier, so it never gets
// a link-local address.
func (p *portSocket) setUpPort(index int, alias string) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(index)
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.IFLA_IFALIAS, []byte(alias)))
	req.AddData(nl.NewRtAttr(unix.IFLA_GROUP, nl.Uint32Attr(0)))
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_SLAVE_KIND, nl.NonZeroTerminated("bridge"))
	slave := info.AddRtAttr(nl.IFLA_INFO_SLAVE_DATA, nil)
	slave.AddRtAttr(nl.IFLA_BRPORT_MODE, []byte{1}) // BRIDGE_MODE_HAIRPIN
	req.AddData(info)
	p.mu.Lock()
	defer p.mu.Unlock()
	results, _, err := sendBatch(p.sock, req)
	if err == nil {
		err = results[0]
	}
	if err != nil {
		return fmt.Errorf("set up bridge port %d: %w", index, err)
	}
	return nil
}

// dumpKind lists the links of one kind (RTM_GETLINK dump with
// IFLA_LINKINFO/IFLA_INFO_KIND, which recent kernels filter by; the
// kind is checked here too), on the port socket; a dump the kernel
// interrupted is
// netlink.ErrDumpInterrupted (RetryDump asks again).
func (p *portSocket) dumpKind(kind string) ([]netlink.Link, error) {
	req := &nl.NetlinkRequest{
		NlMsghdr: unix.NlMsghdr{Len: uint32(unix.SizeofNlMsghdr), Type: unix.RTM_GETLINK, Flags: unix.NLM_F_REQUEST | unix.NLM_F_DUMP},
		Sockets:  map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: p.sock.SocketHandle},
	}
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated(kind))
	req.AddData(info)
	p.mu.Lock()
	defer p.mu.Unlock()
	var links []netlink.Link
	var derr error
	err := req.ExecuteIter(unix.NETLINK_ROUTE, unix.RTM_NEWLINK, func(m []byte) bool {
		l, err := netlink.LinkDeserialize(nil, m)
		if err != nil {
			derr = err
			return false
		}
		if l.Type() == kind {
			links = append(links, l)
		}
		return true
	})
	if errors.Is(err, nl.ErrDumpInterrupted) {
		return links, netlink.ErrDumpInterrupted
	}
	if err == nil {
		err = derr
	}
	return links, err
}

// syncLink asks for the link with index (RTM_GETLINK of one device, whose
// handler first runs the device's pending link-watch event) and drops the
// answer. Errors are ignored: it only hastens what the kernel does anyway.
func (p *portSocket) syncLink(index int) {
	req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(index)
	req.AddData(msg)
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _, _ = sendBatch(p.sock, req)
}

// sendBatch writes reqs to the socket sock in one system call (the kernel
// handles them in order within it) under consecutive sequence numbers,
// and reads until each has its ACK. It returns each request's result, and
// the RTM_NEWLINK messages the kernel echoed to them on the way (for
// NLM_F_ECHO). The library's Execute would stop at the first message of
// the request's type, before the ACK, and so report success for a
// creation the kernel went on to undo (IFLA_MASTER failing after the echo
// of the new link). The caller serialises use of sock.
func sendBatch(sock *routeSocket, reqs ...*nl.NetlinkRequest) (results []error, echoes [][]byte, err error) {
	first := sock.Seq + 1
	var buf []byte
	for _, r := range reqs {
		sock.Seq++
		r.Seq = sock.Seq
		buf = append(buf, r.Serialize()...)
	}
	last := sock.Seq
	s := sock.Socket
	if err := unix.Sendto(s.GetFd(), buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, nil, fmt.Errorf("netlink send: %w", err)
	}
	pid := sock.pid
	rb := recvBufs.Get().(*[]byte)
	defer recvBufs.Put(rb)
	results = make([]error, len(reqs))
	for acked := 0; acked < len(reqs); {
		n, fromKernel, err := recvDatagram(s.GetFd(), *rb)
		if err != nil {
			return nil, nil, fmt.Errorf("netlink receive: %w", err)
		}
		if !fromKernel {
			continue
		}
		for b := (*rb)[:n]; len(b) >= unix.NLMSG_HDRLEN; {
			mlen := int(nl.NativeEndian().Uint32(b[0:4]))
			if mlen < unix.NLMSG_HDRLEN || mlen > len(b) {
				return nil, nil, errors.New("malformed netlink message")
			}
			typ := nl.NativeEndian().Uint16(b[4:6])
			seq, mpid := nl.NativeEndian().Uint32(b[8:12]), nl.NativeEndian().Uint32(b[12:16])
			data := b[unix.NLMSG_HDRLEN:mlen]
			b = b[min(nlAlign(mlen), len(b)):]
			if seq < first || seq > last || mpid != pid {
				continue // an earlier request's unread reply
			}
			switch typ {
			case unix.NLMSG_ERROR:
				if len(data) < 4 {
					return nil, nil, errors.New("short netlink error message")
				}
				if errno := int32(nl.NativeEndian().Uint32(data[0:4])); errno != 0 {
					results[seq-first] = syscall.Errno(-errno)
				}
				acked++
			case unix.RTM_NEWLINK:
				echoes = append(echoes, bytes.Clone(data)) // rb is reused
			}
		}
	}
	return results, echoes, nil
}

// recvBufs holds receive buffers for sendBatch, each as large as a netlink
// datagram may be. The library's Receive put a fresh 64 KiB array on the
// stack for every reply (zeroed each time) and copied what came into
// another allocation: with its set-up of a read deadline, 3 % of a
// connect's CPU.
var recvBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// recvDatagram reads one datagram from the netlink socket fd into buf and
// says whether the kernel sent it. The kernel handles route requests
// within the sendto that carries them, so their replies are queued by the
// time it returns: the read does not wait (MSG_DONTWAIT), and only if
// nothing is there, which a route socket never sees, does it wait in
// poll(2).
func recvDatagram(fd int, buf []byte) (n int, fromKernel bool, err error) {
	for {
		var from unix.RawSockaddrNetlink
		fromLen := uint32(unix.SizeofSockaddrNetlink)
		r, _, errno := unix.Syscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)),
			unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&from)), uintptr(unsafe.Pointer(&fromLen)))
		switch errno {
		case 0:
			return int(r), from.Pid == nl.PidKernel, nil
		case unix.EINTR:
		case unix.EAGAIN:
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			if _, err := unix.Poll(fds, -1); err != nil && err != unix.EINTR {
				return 0, false, err
			}
		default:
			return 0, false, errno
		}
	}
}
