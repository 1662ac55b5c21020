package nftables

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/berth-net/berth/internal/firewall"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// This file watches nftables for changes to berth's table made by anyone
// else (`nft flush ruleset`, a firewall manager's reload), so that the daemon
// can put the table back at once instead of leaving every container cut off
// until its next restart. It listens to the kernel's NFNLGRP_NFTABLES
// notifications: a blocked read, no polling, no CPU while nothing changes.

// Change describes one transaction of another process that touched berth's table.
type Change struct {
	PID  uint32 // the thread that committed it, as the kernel reports it; 0 when events were lost
	Comm string // its command name
	// PortID is the netlink port ID of the socket the transaction was
	// committed on (the NEWGEN message's nlmsg_pid): unlike PID, it does not
	// depend on the PID namespace the reader is in.
	PortID uint32
	What   []string // e.g. "delete table", "delete rule"; deduplicated, in arrival order
	// Lost is true when the kernel dropped notifications (the socket's
	// buffer overflowed): the table may have changed, so rebuild it.
	Lost bool
	// Retry is true for a change the watcher's owner posted itself (Post)
	// to try again a restore that failed.
	Retry bool
}

func (c Change) String() string {
	if c.Retry && !c.Lost && len(c.What) == 0 {
		return "trying again a restore that failed"
	}
	if c.Lost {
		return "nftables notifications were lost"
	}
	return fmt.Sprintf("%s by %q (pid %d)", strings.Join(c.What, ", "), c.Comm, c.PID)
}

// WatchConfig configures Watch.
type WatchConfig struct {
	// NetNSPath is the namespace to watch; "" is the caller's own.
	NetNSPath string
	// Settle is how long to wait after a foreign change before calling
	// OnChange, so that a burst (a reload deletes, then re-adds) costs one
	// rebuild; 0 means 50ms.
	Settle time.Duration
	// OnChange is called from the watcher's goroutine, never concurrently.
	OnChange func(Change)
	// IsSelf says whether a change is this process's own, to be ignored;
	// nil means committedHere.
	IsSelf func(Change) bool
	Log    *slog.Logger
}

// Watcher is a running subscription; Close ends it.
type Watcher struct {
	cfg   WatchConfig
	conn  *netlink.Conn
	kick  chan Change
	done  chan struct{}
	close sync.Once
}

// Watch subscribes to nftables notifications and calls cfg.OnChange after
// every transaction of another process that touched table inet berth. It
// returns once the subscription is in place, so a change made after Watch
// returns is never missed. The watcher stops when ctx ends or on Close.
func Watch(ctx context.Context, cfg WatchConfig) (*Watcher, error) {
	if cfg.OnChange == nil {
		return nil, errors.New("watch nftables: OnChange is nil")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Settle == 0 {
		cfg.Settle = 50 * time.Millisecond
	}
	if cfg.IsSelf == nil {
		cfg.IsSelf = committedHere
	}
	conn, err := dialMonitor(cfg.NetNSPath)
	if err != nil {
		return nil, err
	}
	w := &Watcher{cfg: cfg, conn: conn, kick: make(chan Change, 1), done: make(chan struct{})}
	go w.receive()
	go w.deliver(ctx)
	return w, nil
}

// dialMonitor opens a netfilter socket in the namespace and joins the nftables group.
func dialMonitor(netnsPath string) (*netlink.Conn, error) {
	cfg := &netlink.Config{}
	if netnsPath != "" {
		ns, err := os.Open(netnsPath)
		if err != nil {
			return nil, fmt.Errorf("open netns %q: %w", netnsPath, err)
		}
		defer ns.Close()
		cfg.NetNS = int(ns.Fd())
	}
	conn, err := netlink.Dial(unix.NETLINK_NETFILTER, cfg)
	if err != nil {
		return nil, fmt.Errorf("open nftables notification socket: %w", err)
	}
	// A big buffer makes lost notifications rare; when they are lost
	// anyway, the kernel says so with ENOBUFS and the table is rebuilt.
	// Publishing 10,000 ports sends 10,000 notifications at once, more than
	// the default net.core.rmem_max (about 208 KiB) holds, so the size is
	// forced past that limit where the daemon may (CAP_NET_ADMIN).
	forceReadBuffer(conn, monitorBuffer)
	if err := conn.JoinGroup(unix.NFNLGRP_NFTABLES); err != nil {
		conn.Close()
		return nil, fmt.Errorf("join nftables notification group: %w", err)
	}
	return conn, nil
}

// monitorBuffer is the watcher's receive buffer: room for the notifications
// of a 10,000-port batch. The kernel charges only what is queued.
const monitorBuffer = 16 << 20

// forceReadBuffer sets the socket's receive buffer to size, past
// net.core.rmem_max when the process may, else as far as that limit allows.
func forceReadBuffer(conn *netlink.Conn, size int) {
	rc, err := conn.SyscallConn()
	if err == nil {
		err = rc.Control(func(fd uintptr) {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size) != nil {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, size)
			}
		})
	}
	_ = err // a smaller buffer only makes a rebuild after ENOBUFS likelier
}

// Close stops the watcher; OnChange is not called after Close returns,
// unless it was already running.
func (w *Watcher) Close() error {
	var err error
	w.close.Do(func() {
		close(w.done)
		err = w.conn.Close()
	})
	return err
}

// receive reads notifications until the socket is closed and hands each
// foreign transaction that touched berth's table to deliver.
func (w *Watcher) receive() {
	var tx txState
	for {
		msgs, err := w.conn.Receive()
		if err != nil {
			if errors.Is(err, unix.ENOBUFS) {
				w.cfg.Log.Warn("nftables notifications were lost; rebuilding the table to be sure")
				tx = txState{}
				w.post(Change{Lost: true})
				continue
			}
			select {
			case <-w.done:
			default:
				w.cfg.Log.Error("nftables watcher stopped", "err", err)
			}
			return
		}
		for _, m := range msgs {
			if ch, ok := tx.add(m); ok && !w.cfg.IsSelf(ch) {
				w.post(ch)
			}
		}
	}
}

// Post hands ch to OnChange as if the watcher had seen it, after the
// same settling time and merged with any change still waiting: the owner
// posts a Retry to try a failed restore again from the watcher's own
// goroutine, so that OnChange still never runs concurrently. After
// Close it is dropped.
func (w *Watcher) Post(ch Change) {
	select {
	case <-w.done:
		return
	default:
	}
	w.post(ch)
}

// post queues ch for deliver, merging it with one that is still waiting.
func (w *Watcher) post(ch Change) {
	for {
		select {
		case w.kick <- ch:
			return
		case old := <-w.kick:
			ch = merge(old, ch)
		}
	}
}

func merge(a, b Change) Change {
	out := b
	out.Lost = a.Lost || b.Lost
	out.Retry = a.Retry || b.Retry
	out.What = appendUnique(append([]string(nil), a.What...), b.What...)
	if out.PID == 0 {
		out.PID, out.Comm, out.PortID = a.PID, a.Comm, a.PortID
	}
	return out
}

// deliver waits for a change, lets the burst settle, and calls OnChange.
func (w *Watcher) deliver(ctx context.Context) {
	defer w.Close()
	for {
		var ch Change
		select {
		case <-ctx.Done():
			return
		case <-w.done:
			return
		case ch = <-w.kick:
		}
		select {
		case <-ctx.Done():
			return
		case <-w.done:
			return
		case <-time.After(w.cfg.Settle):
		}
		select {
		case more := <-w.kick:
			ch = merge(ch, more)
		default:
		}
		w.cfg.OnChange(ch)
	}
}

// txState collects the notifications of one transaction: the kernel sends
// one message per changed object and ends the transaction with NEWGEN,
// which names the process that committed it.
type txState struct {
	touched bool
	what    []string
}

// add takes one message; at the end of a transaction that touched berth's
// table it returns the change and true.
func (tx *txState) add(m netlink.Message) (Change, bool) {
	if uint16(m.Header.Type)>>8 != unix.NFNL_SUBSYS_NFTABLES || len(m.Data) < 4 {
		return Change{}, false
	}
	typ := int(uint16(m.Header.Type) & 0xff)
	if typ == unix.NFT_MSG_NEWGEN {
		touched, what := tx.touched, tx.what
		*tx = txState{}
		if !touched {
			return Change{}, false
		}
		pid, comm := genProcess(m.Data[4:])
		return Change{PID: pid, Comm: comm, PortID: m.Header.PID, What: what}, true
	}
	verb, ok := objectVerbs[typ]
	if !ok || m.Data[0] != unix.NFPROTO_INET || tableOf(m.Data[4:]) != firewall.TableName {
		return Change{}, false
	}
	tx.touched = true
	tx.what = appendUnique(tx.what, verb)
	return Change{}, false
}

// objectVerbs names the notifications of objects that live in a table.
var objectVerbs = map[int]string{
	unix.NFT_MSG_NEWTABLE: "add table", unix.NFT_MSG_DELTABLE: "delete table",
	unix.NFT_MSG_NEWCHAIN: "add chain", unix.NFT_MSG_DELCHAIN: "delete chain",
	unix.NFT_MSG_NEWRULE: "add rule", unix.NFT_MSG_DELRULE: "delete rule",
	unix.NFT_MSG_NEWSET: "add set", unix.NFT_MSG_DELSET: "delete set",
	unix.NFT_MSG_NEWSETELEM: "add element", unix.NFT_MSG_DELSETELEM: "delete element",
	unix.NFT_MSG_NEWOBJ: "add object", unix.NFT_MSG_DELOBJ: "delete object",
	unix.NFT_MSG_NEWFLOWTABLE: "add flowtable", unix.NFT_MSG_DELFLOWTABLE: "delete flowtable",
}

// committedHere reports whether a transaction was committed on one of this
// process's nftables sockets (ownPorts). It once went by the committing
// thread (NFTA_GEN_PROC_PID) and, for a thread already gone, by the
// command name: but the kernel reports that thread ID in the initial PID
// namespace, which a daemon in a PID namespace of its own looked up in
// its own /proc (another process's thread of the same number made berth
// rebuild its table in a loop), and any process called "berth" passed for
// this one (a second daemon's changes went unhealed). Both found by QA
// round 24. A netlink port ID is the socket's, in the network namespace
// the socket is in, whatever PID namespace reads it.
func committedHere(ch Change) bool {
	_, ok := ownPorts.Load(ch.PortID)
	return ok && ch.PortID != 0
}

// ownPorts holds the port IDs of this process's open nftables sockets
// (Firewall's), keyed by port ID.
var ownPorts sync.Map

// portIDOf is the netlink port ID the kernel gave the socket of c.
func portIDOf(c *netlink.Conn) (uint32, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var id uint32
	var serr error
	if err := rc.Control(func(fd uintptr) {
		sa, err := unix.Getsockname(int(fd))
		if err != nil {
			serr = err
			return
		}
		nl, ok := sa.(*unix.SockaddrNetlink)
		if !ok {
			serr = fmt.Errorf("getsockname: %T, not a netlink address", sa)
			return
		}
		id = nl.Pid
	}); err != nil {
		return 0, err
	}
	return id, serr
}

// tableOf returns the table a notification is about: for every object
// type the table's name is attribute 1 (NFTA_TABLE_NAME, NFTA_CHAIN_TABLE,
// NFTA_RULE_TABLE, NFTA_SET_TABLE, NFTA_SET_ELEM_LIST_TABLE, …).
func tableOf(attrs []byte) string {
	ad, err := netlink.NewAttributeDecoder(attrs)
	if err != nil {
		return ""
	}
	for ad.Next() {
		if ad.Type() == 1 {
			return ad.String()
		}
	}
	return ""
}

// genProcess reads NFTA_GEN_PROC_PID and NFTA_GEN_PROC_NAME of a NEWGEN message.
func genProcess(attrs []byte) (uint32, string) {
	ad, err := netlink.NewAttributeDecoder(attrs)
	if err != nil {
		return 0, ""
	}
	ad.ByteOrder = binary.BigEndian
	var pid uint32
	var comm string
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_GEN_PROC_PID:
			pid = ad.Uint32()
		case unix.NFTA_GEN_PROC_NAME:
			comm = ad.String()
		}
	}
	return pid, comm
}

func appendUnique(s []string, add ...string) []string {
	for _, a := range add {
		found := false
		for _, x := range s {
			if x == a {
				found = true
				break
			}
		}
		if !found {
			s = append(s, a)
		}
	}
	return s
}
