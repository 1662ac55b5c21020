package nftables

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"slices"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ctKey narrows a conntrack dump, in the kernel, to the flows of one
// protocol sent to one port (the original direction's destination).
type ctKey struct {
	proto uint8
	port  uint16
}

// maxKeyedDumps is how many keyed dumps a deletion makes at most; with
// more keys (a published range) it reads the family's whole table once.
// Each keyed dump walks the kernel's table too, without copying it out.
const maxKeyedDumps = 16

// The kernel's conntrack filter attributes (nfnetlink_conntrack.h,
// nf_internals.h; this VM's 6.18 has them, a kernel without them ignores
// them and sends the whole table).
const (
	ctaFilter           = 25 // CTA_FILTER
	ctaFilterOrigFlags  = 1  // CTA_FILTER_ORIG_FLAGS
	ctaFilterReplyFlags = 2  // CTA_FILTER_REPLY_FLAGS
	ctaFilterProtoNum   = 1 << 3
	ctaFilterDstPort    = 1 << 5
)

// ctSocket is a netfilter netlink socket in the firewall's namespace.
func (f *Firewall) ctSocket() (*nl.SocketHandle, error) {
	ns := netns.None()
	if f.netns != "" {
		var err error
		if ns, err = netns.GetFromPath(f.netns); err != nil {
			return nil, fmt.Errorf("open netns %q: %w", f.netns, err)
		}
		defer ns.Close()
	}
	s, err := nl.GetNetlinkSocketAt(ns, netns.None(), unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, err
	}
	return &nl.SocketHandle{Socket: s}, nil
}

// ctRequest is a conntrack request of family on sock.
func ctRequest(sock *nl.SocketHandle, family uint8, op, flags int) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(unix.NFNL_SUBSYS_CTNETLINK<<8|op, flags)
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_NETFILTER: sock}
	req.AddData(&nl.Nfgenmsg{NfgenFamily: family, Version: nl.NFNETLINK_V0})
	return req
}

// dumpConntrack returns the entries of family's table, each a message
// without its netlink header (the nfgenmsg, then the attributes); with a
// key, only the kernel's choice of them (a kernel older than 5.10 ignores
// the filter and sends them all: the caller's match decides either way).
// An interrupted dump returns what it read with nl.ErrDumpInterrupted.
//
// dumpTable is dumpConntrack; a test puts a kernel that ignores the
// filter in its place.
var dumpTable = dumpConntrack

func dumpConntrack(sock *nl.SocketHandle, family uint8, key *ctKey) ([][]byte, error) {
	req := ctRequest(sock, family, nl.IPCTNL_MSG_CT_GET, unix.NLM_F_DUMP)
	if key != nil {
		tuple := nl.NewRtAttr(unix.NLA_F_NESTED|nl.CTA_TUPLE_ORIG, nil)
		proto := tuple.AddRtAttr(unix.NLA_F_NESTED|nl.CTA_TUPLE_PROTO, nil)
		proto.AddRtAttr(nl.CTA_PROTO_NUM, []byte{key.proto})
		proto.AddRtAttr(nl.CTA_PROTO_DST_PORT, binary.BigEndian.AppendUint16(nil, key.port))
		filter := nl.NewRtAttr(unix.NLA_F_NESTED|ctaFilter, nil)
		filter.AddRtAttr(ctaFilterOrigFlags, nl.Uint32Attr(ctaFilterProtoNum|ctaFilterDstPort))
		filter.AddRtAttr(ctaFilterReplyFlags, nl.Uint32Attr(0))
		req.AddData(tuple)
		req.AddData(filter)
	}
	return req.Execute(unix.NETLINK_NETFILTER, 0)
}

// deleteConntrackEntry deletes the entry a dump gave as msg: its tuple,
// and its ID, so that a newer entry with the same tuple stays.
func deleteConntrackEntry(sock *nl.SocketHandle, family uint8, msg []byte) error {
	req := ctRequest(sock, family, nl.IPCTNL_MSG_CT_DELETE, unix.NLM_F_ACK)
	req.AddRawData(msg[4:]) // the attributes, after the dump's nfgenmsg
	_, err := req.Execute(unix.NETLINK_NETFILTER, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // gone meanwhile (timed out, or deleted by another)
	}
	return err
}

// parseConntrack reads the tuples of a dumped entry (msg: the nfgenmsg,
// then the attributes), enough for the filters' matches.
func parseConntrack(msg []byte) (*netlink.ConntrackFlow, error) {
	if len(msg) < 4 {
		return nil, errors.New("short conntrack message")
	}
	attrs, err := nl.ParseRouteAttr(msg[4:])
	if err != nil {
		return nil, err
	}
	flow := &netlink.ConntrackFlow{FamilyType: msg[0]}
	for _, a := range attrs {
		switch a.Attr.Type & nl.NLA_TYPE_MASK {
		case nl.CTA_TUPLE_ORIG:
			err = parseTuple(a.Value, &flow.Forward)
		case nl.CTA_TUPLE_REPLY:
			err = parseTuple(a.Value, &flow.Reverse)
		case nl.CTA_ZONE:
			if len(a.Value) >= 2 {
				flow.Zone = binary.BigEndian.Uint16(a.Value)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return flow, nil
}

// parseTuple reads a CTA_TUPLE_ORIG or CTA_TUPLE_REPLY nest into t.
func parseTuple(b []byte, t *netlink.IPTuple) error {
	attrs, err := nl.ParseRouteAttr(b)
	if err != nil {
		return err
	}
	for _, a := range attrs {
		var inner []syscall.NetlinkRouteAttr
		if inner, err = nl.ParseRouteAttr(a.Value); err != nil {
			return err
		}
		switch a.Attr.Type & nl.NLA_TYPE_MASK {
		case nl.CTA_TUPLE_IP:
			for _, ip := range inner {
				switch ip.Attr.Type & nl.NLA_TYPE_MASK {
				case nl.CTA_IP_V4_SRC, nl.CTA_IP_V6_SRC:
					t.SrcIP = net.IP(ip.Value)
				case nl.CTA_IP_V4_DST, nl.CTA_IP_V6_DST:
					t.DstIP = net.IP(ip.Value)
				}
			}
		case nl.CTA_TUPLE_PROTO:
			for _, p := range inner {
				switch p.Attr.Type & nl.NLA_TYPE_MASK {
				case nl.CTA_PROTO_NUM:
					if len(p.Value) >= 1 {
						t.Protocol = p.Value[0]
					}
				case nl.CTA_PROTO_SRC_PORT:
					if len(p.Value) >= 2 {
						t.SrcPort = binary.BigEndian.Uint16(p.Value)
					}
				case nl.CTA_PROTO_DST_PORT:
					if len(p.Value) >= 2 {
						t.DstPort = binary.BigEndian.Uint16(p.Value)
					}
				}
			}
		}
	}
	return nil
}

// deleteFamily deletes family's entries that match any of filters, reading
// only the flows of keys (every key the filters can match) when there are
// few: the kernel then copies out those alone, where reading the whole
// table cost about 0.5 s with 100,000 entries. It returns how many went.
// The kernel compares ports for TCP and UDP only (a key of another
// protocol would read all its flows): any other key means one whole read.
func deleteFamily(sock *nl.SocketHandle, family uint8, keys []ctKey, filters []netlink.CustomConntrackFilter) (int, error) {
	var errs []error
	deleted, failed := 0, 0
	// run reads the flows of key (all of them without one) and deletes the
	// matches. keyed is false when the result was not the key's flows
	// alone: the kernel ignored the filter (and the whole table was read
	// and matched), or refused it (refused: nothing was read).
	run := func(key *ctKey) (keyed, refused bool) {
		msgs, err := dumpTable(sock, family, key)
		if key != nil && err != nil && !errors.Is(err, nl.ErrDumpInterrupted) {
			return false, true
		}
		if err != nil {
			errs = append(errs, err) // an interrupted dump: do what it read
		}
		keyed = true
		for _, msg := range msgs {
			flow, perr := parseConntrack(msg)
			if perr != nil {
				errs = append(errs, perr)
				continue
			}
			if key != nil && (flow.Forward.Protocol != key.proto || flow.Forward.DstPort != key.port) {
				keyed = false // the kernel ignored the filter: this is the whole table
			}
			for _, flt := range filters {
				if flt.MatchConntrackFlow(flow) {
					if derr := deleteConntrackEntry(sock, family, msg); derr != nil {
						failed++
						errs = append(errs, derr)
					} else {
						deleted++
					}
					break
				}
			}
		}
		return keyed, false
	}
	keyable := len(keys) > 0 && len(keys) <= maxKeyedDumps && !slices.ContainsFunc(keys, func(k ctKey) bool {
		return k.proto != unix.IPPROTO_TCP && k.proto != unix.IPPROTO_UDP
	})
	if !keyable {
		run(nil)
	} else {
		for i := range keys {
			keyed, refused := run(&keys[i])
			if refused {
				run(nil) // a filter this kernel refuses: one whole read
			}
			if !keyed {
				break // the whole table was read, and matched against every filter
			}
		}
	}
	if failed > 0 {
		errs = append(errs, fmt.Errorf("%d entries not deleted", failed))
	}
	return deleted, errors.Join(errs...)
}
