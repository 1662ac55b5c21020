package bridge

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/network"
)

// portSocket is a route-netlink socket of the driver's own in the host
// namespace, for the one request the netlink library cannot make: several
// changes to a link in a single message. Requests on it are serialised.
type portSocket struct {
	mu   sync.Mutex
	sock *nl.SocketHandle // one handle, so that its sequence numbers advance
}

func openPortSocket(hostNetns string) (*portSocket, error) {
	sock, err := routeSocketIn(hostNetns)
	if err != nil {
		return nil, err
	}
	return &portSocket{sock: sock}, nil
}

// routeSocketIn opens a route-netlink socket of its own in the namespace
// at path ("" = the caller's), as a handle whose sequence numbers advance
// from request to request.
func routeSocketIn(path string) (*nl.SocketHandle, error) {
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
	return &nl.SocketHandle{Socket: sock}, nil
}

func (p *portSocket) close() { p.sock.Socket.Close() }

// sockets is what a request executes on: this socket, whose replies carry
// the request's sequence number (a reply an earlier request left unread is
// skipped for its older number).
func (p *portSocket) sockets() map[int]*nl.SocketHandle {
	return map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: p.sock}
}

// createVeth makes the pair of spec in one RTM_NEWLINK: the host end up,
// with the MTU and as a port of the bridge at brIndex (IFLA_MASTER, which
// the kernel applies at creation and undoes the whole pair if it fails),
// the peer in the namespace open as nsFD with its name, MAC and MTU. With
// NLM_F_ECHO the kernel sends the new host end back: its index and, in
// IFLA_LINK, the peer's. host's index is 0 when the kernel echoed nothing.
func (p *portSocket) createVeth(spec network.EndpointSpec, brIndex, nsFD int) (host netlink.Link, peerIndex int, err error) {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK|unix.NLM_F_ECHO)
	req.Sockets = p.sockets()
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Flags, msg.Change = unix.IFF_UP, unix.IFF_UP
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(spec.HostIfName)))
	if spec.MTU > 0 {
		req.AddData(nl.NewRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(spec.MTU))))
	}
	req.AddData(nl.NewRtAttr(unix.IFLA_MASTER, nl.Uint32Attr(uint32(brIndex))))
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
	peer.AddRtAttr(unix.IFLA_NET_NS_FD, nl.Uint32Attr(uint32(nsFD)))
	req.AddData(info)

	host = &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: spec.HostIfName, MTU: spec.MTU, MasterIndex: brIndex}}
	p.mu.Lock()
	defer p.mu.Unlock()
	echoes, err := p.executeEcho(req)
	for _, m := range echoes {
		if l, derr := netlink.LinkDeserialize(nil, m); derr == nil && l.Attrs().Name == spec.HostIfName {
			host, peerIndex = l, l.Attrs().ParentIndex
		}
	}
	return host, peerIndex, err
}

// setUpPort finishes a host end that was made a bridge port at creation,
// in one RTM_NEWLINK (three netlink round trips fewer than one call
// each): its owner alias; IPv6 address generation off, before the peer
// comes up and gives it a carrier, so it never gets a link-local address
// or sends DAD, router solicitations or MLD into the container; and hairpin
// mode on its bridge port (IFLA_INFO_SLAVE_DATA, which the kernel applies
// to a link that already has a master). A kernel without IPv6 refuses the
// address-generation part (EAFNOSUPPORT): the rest is sent again without it.
func (p *portSocket) setUpPort(index int, alias string) error {
	err := p.newlink(index, alias, true)
	if errors.Is(err, unix.EAFNOSUPPORT) {
		err = p.newlink(index, alias, false)
	}
	return err
}

func (p *portSocket) newlink(index int, alias string, noIPv6Autoconf bool) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_ACK)
	req.Sockets = p.sockets()
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(index)
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.IFLA_IFALIAS, []byte(alias)))
	if noIPv6Autoconf {
		mode := nl.NewRtAttr(unix.IFLA_INET6_ADDR_GEN_MODE, []byte{byte(nl.IN6_ADDR_GEN_MODE_NONE)})
		inet6 := nl.NewRtAttr(unix.AF_INET6, mode.Serialize())
		req.AddData(nl.NewRtAttr(unix.IFLA_AF_SPEC, inet6.Serialize()))
	}
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_SLAVE_KIND, nl.NonZeroTerminated("bridge"))
	slave := info.AddRtAttr(nl.IFLA_INFO_SLAVE_DATA, nil)
	slave.AddRtAttr(nl.IFLA_BRPORT_MODE, []byte{1}) // BRIDGE_MODE_HAIRPIN
	req.AddData(info)
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
		return fmt.Errorf("set up bridge port %d: %w", index, err)
	}
	return nil
}

// executeEcho sends req and reads up to its ACK, returning the RTM_NEWLINK
// messages the kernel echoed on the way. The library's Execute stops at
// the first message of the request's type, before the ACK, and so would
// report success for a creation the kernel went on to undo (IFLA_MASTER
// failing after the echo of the new link). The caller holds p.mu.
func (p *portSocket) executeEcho(req *nl.NetlinkRequest) ([][]byte, error) {
	s := p.sock.Socket
	req.Seq = atomic.AddUint32(&p.sock.Seq, 1)
	if err := s.Send(req); err != nil {
		return nil, err
	}
	pid, err := s.GetPid()
	if err != nil {
		return nil, err
	}
	var echoes [][]byte
	for {
		msgs, from, err := s.Receive()
		if err != nil {
			return nil, err
		}
		if from.Pid != nl.PidKernel {
			continue
		}
		for _, m := range msgs {
			if m.Header.Seq != req.Seq || m.Header.Pid != pid {
				continue // an earlier request's unread ACK
			}
			switch m.Header.Type {
			case unix.NLMSG_ERROR:
				if len(m.Data) < 4 {
					return nil, fmt.Errorf("short netlink error message")
				}
				if errno := int32(nl.NativeEndian().Uint32(m.Data[0:4])); errno != 0 {
					return nil, syscall.Errno(-errno)
				}
				return echoes, nil
			case unix.RTM_NEWLINK:
				echoes = append(echoes, m.Data)
			}
		}
	}
}
