package bridge

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// reapGroup is the interface group (IFLA_GROUP) that marks host veths Leave
// has cut off and that wait to be deleted. Group 0 is every link's default;
// this value ("bert" in ASCII) is berth's alone.
const reapGroup = 0x62657274

// pendingGroup marks a host veth from its creation until Join tags it
// with its owner's alias (setUpPort), "bern" in ASCII. A link berth made
// and had no time to tag carries no owner, so reconcile cannot tell it
// from a link of someone else's; its endpoint's record names it, unless
// that record was lost (a store rolled back to its last checkpoint). A
// driver that starts deletes this group with the reap group, before any
// Join can be in flight.
const pendingGroup = 0x6265726e

// Groups are the interface groups a driver marks its host veths with:
// Reap for pairs Leave cut off, Pending from creation until Join tags
// them. Each kind of process that runs a driver has its own, so that one
// never deletes another's links in flight.
type Groups struct {
	Reap, Pending uint32
	// SweepPending deletes the Pending group's links at New, the leftovers
	// of a crash in mid-Join: right for the daemon (one per host
	// namespace, so none of its Joins is in flight then), wrong where
	// several processes may run at once (berth-cni), each with its Joins.
	SweepPending bool
	// LeaveMarked makes the reaper delete nothing on its own, and New
	// sweep nothing: the pairs Leave marked stay, cut off and with the
	// container end renamed out of the way, until someone calls
	// DeleteGroup. For a process that lives for one call (berth-cni),
	// which hands the delete and its RCU wait (20-30 ms) to a process of
	// its own instead of waiting for it, and whose next call must not
	// wait for it either.
	LeaveMarked bool
}

// DaemonGroups are the daemon's; CNIGroups are berth-cni's ("bcnr" and
// "bcnp" in ASCII). berth-cni undoes a Join cut off half-way from its
// state file instead of by sweeping.
var (
	DaemonGroups = Groups{Reap: reapGroup, Pending: pendingGroup, SweepPending: true}
	CNIGroups    = Groups{Reap: 0x62636e72, Pending: 0x62636e70, LeaveMarked: true}
)

// isBerthGroup says whether interface group g is one of berth's (the
// daemon's or berth-cni's): a veth in it is berth's whatever its alias.
func isBerthGroup(g uint32) bool {
	for _, gs := range []Groups{DaemonGroups, CNIGroups} {
		if g != 0 && (g == gs.Reap || g == gs.Pending) {
			return true
		}
	}
	return false
}

// reaper deletes the veths that Leave marked, in batches, off the caller's
// path. Deleting a link makes the deleting thread wait for an RCU barrier
// (netdev_run_todo; about 20-30 ms here), however many links go at once,
// and one RTM_DELLINK naming a group deletes every link in it. So Leave
// only marks a link (a cheap setlink) and the reaper, after gathering marks
// for gatherTime, pays the barrier once per batch.
//
// Nothing leaks if the daemon dies first: marked links keep their berth
// alias and group, and New deletes the group's links before anything else.
type reaper struct {
	sock  *routeSocket // its own: a delete holds the socket through the barrier; one handle, so sequence numbers advance
	log   *slog.Logger
	group uint32 // the links it deletes (Groups.Reap)
	// idle is Groups.LeaveMarked: no batch runs, marks only accumulate.
	idle bool

	mu      sync.Mutex
	pending map[string]reapEntry // by host interface name; marked, not yet deleted
	kick    chan struct{}
	hurry   chan struct{} // cuts gather short, for settle
	stop    chan struct{}
	stopped chan struct{}
}

// reapEntry is one marked veth pair and where its peer lives, so that a Join
// reusing either name can wait for it, or move the peer's name aside.
type reapEntry struct {
	sandbox, ifName string
	hostIndex       int           // the host end's ifindex, to recognise the peer
	done            chan struct{} // closed once the link is deleted
}

// newReaper opens the reaper's socket in the namespace at hostNetns ("" =
// the caller's), deletes what an earlier run left marked, and starts it.
func newReaper(hostNetns string, groups Groups, log *slog.Logger) (*reaper, error) {
	sock, err := routeSocketIn(hostNetns)
	if err != nil {
		return nil, err
	}
	r := &reaper{
		sock: sock, log: log, group: groups.Reap, idle: groups.LeaveMarked,
		pending: map[string]reapEntry{},
		kick:    make(chan struct{}, 1),
		hurry:   make(chan struct{}, 1),
		stop:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	var sweep []uint32
	if !groups.LeaveMarked {
		sweep = append(sweep, groups.Reap)
	}
	if groups.SweepPending {
		sweep = append(sweep, groups.Pending)
	}
	for _, g := range sweep {
		if err := r.deleteGroup(g); err != nil {
			sock.Socket.Close()
			return nil, fmt.Errorf("delete veths an earlier run left in group %#x: %w", g, err)
		}
	}
	go r.loop()
	return r, nil
}

// add records a marked link and wakes the reaper.
func (r *reaper) add(hostIfName string, hostIndex int, sandbox, ifName string) {
	r.mu.Lock()
	if _, ok := r.pending[hostIfName]; !ok {
		r.pending[hostIfName] = reapEntry{sandbox: sandbox, ifName: ifName, hostIndex: hostIndex, done: make(chan struct{})}
	}
	r.mu.Unlock()
	if r.idle {
		return
	}
	select {
	case r.kick <- struct{}{}:
	default: // a batch is already due
	}
}

func (r *reaper) isPending(hostIfName string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.pending[hostIfName]
	return ok
}

// holding returns the marked pairs that hold the host name, or the
// container-side name in that sandbox, that a Join is about to create.
func (r *reaper) holding(hostIfName, sandbox, ifName string) (host, peer []reapEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, e := range r.pending {
		switch {
		case name == hostIfName:
			host = append(host, e)
		case e.sandbox == sandbox && e.ifName == ifName:
			peer = append(peer, e)
		}
	}
	return host, peer
}

// settle blocks until every link marked so far is deleted.
// await waits until e is deleted; an idle reaper deletes its marks now,
// since nothing else would.
func (r *reaper) await(e reapEntry) {
	if r.idle {
		r.batch()
	}
	<-e.done
}

func (r *reaper) settle() {
	for r.idle {
		// Nothing else deletes: batch until no mark is left (one added
		// by another goroutine after a batch's snapshot too).
		r.batch()
		r.mu.Lock()
		left := len(r.pending)
		r.mu.Unlock()
		if left == 0 {
			return
		}
	}
	select {
	case r.hurry <- struct{}{}:
	default:
	}
	r.mu.Lock()
	var waits []chan struct{}
	for _, e := range r.pending {
		waits = append(waits, e.done)
	}
	r.mu.Unlock()
	for _, c := range waits {
		<-c
	}
}

func (r *reaper) loop() {
	defer close(r.stopped)
	for {
		select {
		case <-r.kick:
			r.gather()
			r.batch()
		case <-r.stop:
			if !r.idle {
				r.batch()
			}
			return
		}
	}
}

// gatherTime is how long the reaper lets marks accumulate before a batch:
// a burst of Leaves (a compose project going down) then shares one delete,
// and a Join right after a Leave does not queue behind the delete for the
// RTNL lock.
const gatherTime = 10 * time.Millisecond

// gather waits gatherTime, or less if asked to hurry or stop.
func (r *reaper) gather() {
	t := time.NewTimer(gatherTime)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.hurry:
	case <-r.stop:
	}
}

// batch deletes every marked link and releases the entries that were
// recorded before the delete: each was marked before it was recorded, so
// the delete took it.
func (r *reaper) batch() {
	r.mu.Lock()
	batch := make(map[string]reapEntry, len(r.pending))
	for name, e := range r.pending {
		batch[name] = e
	}
	r.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	if err := r.deleteGroup(r.group); err != nil {
		// The links stay marked and tagged; the next batch, or the next
		// start, tries again. Waiters are released so that Join fails on
		// the names with a clear error instead of hanging.
		r.log.Warn("delete marked veths", "count", len(batch), "err", err)
	}
	r.mu.Lock()
	for name, e := range batch {
		// Another batch (an idle reaper's await, from another
		// goroutine) may have released it already.
		if cur, ok := r.pending[name]; ok && cur.done == e.done {
			delete(r.pending, name)
			close(e.done)
		}
	}
	r.mu.Unlock()
}

// deleteGroup deletes every link in group with one RTM_DELLINK: with
// ifindex 0 and IFLA_GROUP the kernel deletes the whole group at once
// (rtnl_group_dellink), veth peers included.
func (r *reaper) deleteGroup(group uint32) error {
	req := nl.NewNetlinkRequest(unix.RTM_DELLINK, unix.NLM_F_ACK)
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_ROUTE: r.sock.SocketHandle}
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_GROUP, nl.Uint32Attr(group)))
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	if errors.Is(err, unix.ENODEV) {
		return nil // the group is empty
	}
	return err
}

// close deletes what is still marked and stops the reaper.
func (r *reaper) close() {
	close(r.stop)
	<-r.stopped
	r.sock.Socket.Close()
}

// DeleteGroup deletes every link of group in the network namespace at
// hostNetns ("" = the caller's) and waits for the kernel: what a driver
// with Groups.LeaveMarked leaves for someone else to do.
func DeleteGroup(hostNetns string, group uint32) error {
	sock, err := routeSocketIn(hostNetns)
	if err != nil {
		return err
	}
	defer sock.Socket.Close()
	r := &reaper{sock: sock}
	return r.deleteGroup(group)
}
