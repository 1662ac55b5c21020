package bridge

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/driverapi"
	"github.com/berth-net/berth/internal/sandbox"
)

// This file watches the host namespace for changes to berth's links that
// berth did not make: a bridge or a veth host end deleted, set down or
// taken off its bridge by hand (`ip link del br-…`, `ip link set berth0
// down`), a bridge's address deleted. Docker notices none of these until
// its next restart, and the containers behind such a link are cut off
// silently until then. The watcher listens to the kernel's link and
// address notifications, a blocked read with no polling, and reports
// what it saw by owner tag; the controller decides what still needs
// mending (network.Controller.Damaged), so berth's own leaves, removals
// and container exits, which delete links too, cost a check and nothing
// else.

// LinkWatcher is a running subscription; Close ends it.
type LinkWatcher struct {
	d      *Driver
	fd     int // the notification socket: blocking, read by receive's own thread
	wake   int // an eventfd Close writes, to end receive's wait and rest
	report func(driverapi.LinkDamage)
	gone   func(index int, name string) // nil: no one asked
	settle time.Duration
	kick   chan driverapi.LinkDamage
	// masters says, by ifindex, whether a bridge a veth of berth's is a
	// port of is one of berth's; learnt as veths are seen, and only
	// receive touches it.
	masters map[uint32]bool
	done    chan struct{}
	close   sync.Once
	ended   sync.WaitGroup
}

// watchBuffer is the subscription's receive buffer: room for the
// notifications of 1,000 containers stopping at once (each deletes a
// pair, about 1.5 KiB of notification), and for what comes while
// receive rests. When they are lost anyway the kernel says so (ENOBUFS)
// and every link is checked.
const watchBuffer = 8 << 20

// receiveRest is how long receive rests after reading what was queued.
const receiveRest = 100 * time.Millisecond

// WatchLinks subscribes to the host namespace's link and address
// notifications and calls report with the damage to berth's links, each
// burst once it has been quiet for settle. It returns once the
// subscription is in place, so a change made after it returns is never
// missed. report runs on the watcher's own goroutine, one call at a
// time; the watcher stops when ctx ends or on Close.
//
// gone, when not nil, is called with the ifindex and name of every link
// of someone else's that is deleted (a VPN's tun going down), at once, on
// the thread that reads the notifications: it must not block (the daemon
// hands it to its route watcher's goroutine). The daemon forgets the
// warnings about that link's routes with it, since the kernel announces
// no IPv4 route deletion when a link takes its routes away.
func (d *Driver) WatchLinks(ctx context.Context, settle time.Duration, report func(driverapi.LinkDamage), gone func(index int, name string)) (*LinkWatcher, error) {
	fd, err := openLinkSocket(d.hostNetns)
	if err != nil {
		return nil, fmt.Errorf("open link notification socket: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	w := &LinkWatcher{d: d, fd: fd, wake: wake, report: report, gone: gone, settle: settle, kick: make(chan driverapi.LinkDamage, 1), done: make(chan struct{}), masters: map[uint32]bool{}}
	w.ended.Add(2)
	go w.receive()
	go w.deliver(ctx)
	return w, nil
}

// openLinkSocket opens a blocking route-netlink socket in the namespace
// at path ("" = the caller's), bound to the link and address groups,
// with watchBuffer to receive into.
func openLinkSocket(path string) (int, error) {
	var fd int
	open := func() error {
		var err error
		if fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE); err != nil {
			return err
		}
		groups := uint32(1<<(unix.RTNLGRP_LINK-1) | 1<<(unix.RTNLGRP_IPV4_IFADDR-1) | 1<<(unix.RTNLGRP_IPV6_IFADDR-1))
		if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
			unix.Close(fd)
			return err
		}
		return nil
	}
	var err error
	if path == "" {
		err = open()
	} else {
		err = sandbox.Do(path, open)
	}
	if err != nil {
		return -1, err
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, watchBuffer) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, watchBuffer)
	}
	return fd, nil
}

// Close stops the watcher and waits for it: report is not called after
// Close returns. A second Close waits for the first.
func (w *LinkWatcher) Close() error {
	var err error
	w.close.Do(func() {
		close(w.done)
		if w.wake > 0 { // 0: a watcher a test made without sockets
			var one [8]byte
			one[0] = 1
			_, _ = unix.Write(w.wake, one[:])
		}
		w.ended.Wait()
		if w.wake > 0 {
			err = errors.Join(unix.Close(w.fd), unix.Close(w.wake))
		}
	})
	return err
}

// receive reads notifications until Close and posts the damage each one
// shows. It runs on a thread of its own, blocked in poll(2) on the
// socket and Close's eventfd: not in Go's poller, whose thread every
// notification would wake, on the other CPU while a Join works (that
// cost each Join 0.06-0.1 ms on a 2-CPU VM, BenchmarkJoinWatched). After
// a wake it reads what is queued, then rests for receiveRest before it
// polls again: a connect causes a few notifications here, and while
// berth works it wakes at most once per rest; while nothing happens, not
// at all. The socket's buffer holds what comes meanwhile, and the settle
// that follows a change is longer anyway.
func (w *LinkWatcher) receive() {
	defer w.ended.Done()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	buf := make([]byte, 64<<10)
	for {
		fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}, {Fd: int32(w.wake), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, -1); err != nil && !errors.Is(err, unix.EINTR) {
			w.d.log.Error("link watcher stopped; links changed by hand are mended only at the next start", "err", err)
			return
		}
		if fds[1].Revents != 0 {
			return // Close
		}
		if !w.readQueued(buf) {
			return
		}
		rest := []unix.PollFd{{Fd: int32(w.wake), Events: unix.POLLIN}}
		if n, _ := unix.Poll(rest, int(receiveRest/time.Millisecond)); n > 0 {
			return // Close
		}
	}
}

// readQueued reads every notification queued on the socket and posts the
// damage each shows; false when the socket failed.
func (w *LinkWatcher) readQueued(buf []byte) bool {
	for {
		n, from, err := unix.Recvfrom(w.fd, buf, unix.MSG_DONTWAIT)
		switch {
		case errors.Is(err, unix.EAGAIN):
			return true
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ENOBUFS):
			w.d.log.Warn("link notifications were lost; checking every link of berth's")
			w.post(driverapi.LinkDamage{Lost: true})
			continue
		case err != nil:
			w.d.log.Error("link watcher stopped; links changed by hand are mended only at the next start", "err", err)
			return false
		}
		if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != 0 {
			continue // not from the kernel
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			continue
		}
		for _, m := range msgs {
			if owner, what, ok := w.damage(m.Header.Type, m.Data); ok {
				w.post(driverapi.LinkDamage{Owners: map[string]string{owner: what}})
			}
		}
	}
}

// damage reads one notification: the owner tag of the berth link it is
// about and what happened to it, or ok false when it shows nothing to
// mend.
func (w *LinkWatcher) damage(typ uint16, data []byte) (owner, what string, ok bool) {
	switch typ {
	case unix.RTM_NEWLINK, unix.RTM_DELLINK:
		l, err := parseLinkMessage(data)
		// AF_BRIDGE messages are a bridge's port events (a port taken
		// off the bridge sends an RTM_DELLINK of that family): the
		// AF_UNSPEC message about the same link says what changed.
		if err != nil || l.family != unix.AF_UNSPEC || l.group == reapGroup || l.group == CNIGroups.Reap { // a leaving pair: berth's own, or berth-cni's
			return "", "", false
		}
		deleted := typ == unix.RTM_DELLINK
		if l.kind == "bridge" && deleted {
			delete(w.masters, l.index)
		}
		if l.kind == "bridge" && w.d.ownChanges.ours(int(l.index)) {
			return "", "", false // berth deleting it (DeleteBridge)
		}
		owner, ok := ownerFromAlias(l.alias)
		if !ok {
			if deleted && w.gone != nil {
				w.gone(int(l.index), l.name)
			}
			return "", "", false
		}
		if what, ok := l.damage(deleted); ok {
			return owner, what, true
		}
		if l.kind == "veth" && !w.berthBridge(l.master) {
			return owner, l.name + " moved to a bridge not berth's", true
		}
		return "", "", false
	case unix.RTM_DELADDR:
		index, scope, ok := parseAddrMessage(data)
		if !ok || scope != unix.RT_SCOPE_UNIVERSE || w.d.ownChanges.ours(index) { // a link-local address is the kernel's; an old gateway berth's
			return "", "", false
		}
		l, err := w.d.h.LinkByIndex(index)
		if err != nil || l.Type() != "bridge" { // gone: its deletion says so
			return "", "", false
		}
		owner, ok := ownerFromAlias(l.Attrs().Alias)
		return owner, l.Attrs().Name + " lost an address", ok
	}
	return "", "", false
}

// Post queues d as if the watcher had seen it: the daemon hands back
// damage it had to set aside while it started.
func (w *LinkWatcher) Post(d driverapi.LinkDamage) { w.post(d) }

// berthBridge reports whether the link with ifindex index is a bridge
// berth made (its alias says so), looking it up the first time.
func (w *LinkWatcher) berthBridge(index uint32) bool {
	if ours, ok := w.masters[index]; ok {
		return ours
	}
	l, err := w.d.h.LinkByIndex(int(index))
	if err != nil {
		return true // gone already: its deletion says what happened
	}
	_, ours := ownerFromAlias(l.Attrs().Alias)
	ours = ours && l.Type() == "bridge"
	w.masters[index] = ours
	return ours
}

// post queues d for deliver, merging it with damage still waiting.
func (w *LinkWatcher) post(d driverapi.LinkDamage) {
	for {
		select {
		case w.kick <- d:
			return
		case old := <-w.kick:
			old.Add(d)
			d = old
		case <-w.done:
			return
		}
	}
}

// deliver waits for damage, lets the burst settle, and reports it.
func (w *LinkWatcher) deliver(ctx context.Context) {
	defer w.ended.Done()
	for {
		var d driverapi.LinkDamage
		select {
		case <-ctx.Done():
			return
		case <-w.done:
			return
		case d = <-w.kick:
		}
		// Quiet for settle, or at most settleMax after the first change:
		// a link flapping without end must not hold the report back.
		deadline := time.After(w.settleMax())
		for quiet := false; !quiet; {
			select {
			case <-ctx.Done():
				return
			case <-w.done:
				return
			case more := <-w.kick:
				d.Add(more)
			case <-time.After(w.settle):
				quiet = true
			case <-deadline:
				quiet = true
			}
		}
		w.report(d)
	}
}

// settleMax is the longest a report waits for its burst to end: 20
// settles.
func (w *LinkWatcher) settleMax() time.Duration { return 20 * w.settle }

// linkMessage is what the watcher reads of an RTM_NEWLINK or RTM_DELLINK.
type linkMessage struct {
	family            uint8
	index             uint32
	name, alias, kind string
	flags             uint32
	master            uint32
	group             uint32
}

// damage says what the notification shows happened to a berth link:
// deleted, set down, or (a veth) not a port of any bridge.
func (l linkMessage) damage(deleted bool) (string, bool) {
	switch {
	case deleted:
		return l.name + " deleted", true
	case l.flags&unix.IFF_UP == 0:
		return l.name + " set down", true
	case l.kind == "veth" && l.master == 0:
		return l.name + " taken off its bridge", true
	}
	return "", false
}

// parseLinkMessage decodes an ifinfomsg and the attributes the watcher
// needs, without building a whole link: the daemon sees a few of these
// for every connect, and decoding them must not cost the connect's CPU.
func parseLinkMessage(b []byte) (linkMessage, error) {
	var l linkMessage
	if len(b) < unix.SizeofIfInfomsg {
		return l, errors.New("short ifinfomsg")
	}
	l.family = b[0]
	l.index = binary.NativeEndian.Uint32(b[4:8])
	l.flags = binary.NativeEndian.Uint32(b[8:12])
	ad, err := netlink.NewAttributeDecoder(b[unix.SizeofIfInfomsg:])
	if err != nil {
		return l, err
	}
	for ad.Next() {
		switch ad.Type() {
		case unix.IFLA_IFNAME:
			l.name = ad.String()
		case unix.IFLA_IFALIAS:
			l.alias = ad.String()
		case unix.IFLA_MASTER:
			l.master = ad.Uint32()
		case unix.IFLA_GROUP:
			l.group = ad.Uint32()
		case unix.IFLA_LINKINFO:
			ad.Nested(func(nad *netlink.AttributeDecoder) error {
				for nad.Next() {
					if nad.Type() == unix.IFLA_INFO_KIND {
						l.kind = nad.String()
					}
				}
				return nil
			})
		}
	}
	return l, ad.Err()
}

// parseAddrMessage decodes an ifaddrmsg's link index and scope.
func parseAddrMessage(b []byte) (index int, scope uint8, ok bool) {
	if len(b) < unix.SizeofIfAddrmsg {
		return 0, 0, false
	}
	return int(binary.NativeEndian.Uint32(b[4:8])), b[3], true
}
