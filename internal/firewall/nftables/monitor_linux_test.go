package nftables

import (
	"context"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/firewall"
	"github.com/berth-net/berth/internal/nstest"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// watchTest starts a watcher in ns whose changes arrive on the returned channel.
func watchTest(t *testing.T, ns string) <-chan Change {
	t.Helper()
	changes := make(chan Change, 16)
	ctx, cancel := context.WithCancel(context.Background())
	w, err := Watch(ctx, WatchConfig{NetNSPath: ns, Settle: time.Millisecond, Log: testLogger(t),
		OnChange: func(c Change) { changes <- c }})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		w.Close()
	})
	return changes
}

// nextChange waits for the watcher's next report; the bound only keeps a
// broken watcher from hanging the test, it asserts nothing about speed.
func nextChange(t *testing.T, changes <-chan Change) Change {
	t.Helper()
	select {
	case c := <-changes:
		return c
	case <-time.After(time.Minute):
		t.Fatal("no change reported")
		return Change{}
	}
}

var watchNet = firewall.Network{Bridge: "br-watch", Subnet: netip.MustParsePrefix("10.77.0.0/24"), ICC: true, Masquerade: true}

// TestWatchReportsForeignChanges: deleting or flushing berth's table with
// nft is reported with nft's name, and berth's own changes (made before
// and in between) are not reported at all.
func TestWatchReportsForeignChanges(t *testing.T) {
	fw, ns := newTestFirewall(t)
	changes := watchTest(t, ns)
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		cmd      []string
		wantWhat string
	}{
		{"flush ruleset", []string{"nft", "flush", "ruleset"}, "delete table"},
		{"delete table", []string{"nft", "delete", "table", "inet", "berth"}, "delete table"},
		{"flush table", []string{"nft", "flush", "table", "inet", "berth"}, "delete rule"},
		{"delete element", []string{"nft", "delete", "element", "inet", "berth", "fwd_in", "{ \"br-watch\" }"}, "delete element"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Our own changes: a rebuild and an add. They must not be reported.
			if err := fw.Rebuild(ctx, nil); err != nil {
				t.Fatal(err)
			}
			if err := fw.AddNetwork(ctx, watchNet); err != nil {
				t.Fatal(err)
			}
			// Someone else's table is none of berth's business.
			run(t, ns, "nft", "add", "table", "ip", "other")
			run(t, ns, "nft", "delete", "table", "ip", "other")
			run(t, ns, tc.cmd...)
			c := nextChange(t, changes)
			if c.Comm != "nft" || c.Lost {
				t.Errorf("change = %+v, want one by nft", c)
			}
			if !slices.Contains(c.What, tc.wantWhat) {
				t.Errorf("change.What = %q, want it to contain %q", c.What, tc.wantWhat)
			}
			for _, w := range c.What {
				if strings.HasPrefix(w, "add") {
					t.Errorf("change.What = %q: berth's own additions were reported", c.What)
				}
			}
		})
	}
}

// TestWatchHealsTable: a watcher that rebuilds on change restores the
// table after nft flush ruleset, and its own rebuild does not loop.
func TestWatchHealsTable(t *testing.T) {
	fw, ns := newTestFirewall(t)
	ctx := context.Background()
	nets := []firewall.Network{watchNet}
	if err := fw.Rebuild(ctx, nets); err != nil {
		t.Fatal(err)
	}
	healed := make(chan Change, 16)
	w, err := Watch(ctx, WatchConfig{NetNSPath: ns, Log: testLogger(t), OnChange: func(c Change) {
		if err := fw.Rebuild(ctx, nets); err != nil {
			t.Errorf("rebuild: %v", err)
		}
		healed <- c
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	for round := range 3 {
		run(t, ns, "nft", "flush", "ruleset")
		nextChange(t, healed)
		checkTable(t, ns, "after heal", nets)
		if n := len(healed); n != 0 {
			t.Errorf("round %d: %d more heals queued: the rebuild was reported as a foreign change", round, n)
		}
	}
}

// TestTxStateParsing feeds hand-made notifications through the parser.
func TestTxStateParsing(t *testing.T) {
	msg := func(typ int, family uint8, attrs ...netlink.Attribute) netlink.Message {
		b, err := netlink.MarshalAttributes(attrs)
		if err != nil {
			t.Fatal(err)
		}
		return netlink.Message{
			Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | typ)},
			Data:   append([]byte{family, 0, 0, 0}, b...),
		}
	}
	name := func(s string) netlink.Attribute { return netlink.Attribute{Type: 1, Data: append([]byte(s), 0)} }
	gen := msg(unix.NFT_MSG_NEWGEN, 0,
		netlink.Attribute{Type: unix.NFTA_GEN_ID, Data: []byte{0, 0, 0, 9}},
		netlink.Attribute{Type: unix.NFTA_GEN_PROC_PID, Data: []byte{0, 0, 0x30, 0x39}},
		netlink.Attribute{Type: unix.NFTA_GEN_PROC_NAME, Data: []byte("nft\x00")})
	for _, tc := range []struct {
		name string
		msgs []netlink.Message
		want *Change
	}{
		{"our table deleted", []netlink.Message{msg(unix.NFT_MSG_DELTABLE, unix.NFPROTO_INET, name("berth")), gen},
			&Change{PID: 12345, Comm: "nft", What: []string{"delete table"}}},
		{"rules and elements", []netlink.Message{msg(unix.NFT_MSG_DELRULE, unix.NFPROTO_INET, name("berth")),
			msg(unix.NFT_MSG_DELRULE, unix.NFPROTO_INET, name("berth")), msg(unix.NFT_MSG_DELSETELEM, unix.NFPROTO_INET, name("berth")), gen},
			&Change{PID: 12345, Comm: "nft", What: []string{"delete rule", "delete element"}}},
		{"other table", []netlink.Message{msg(unix.NFT_MSG_DELTABLE, unix.NFPROTO_INET, name("filter")), gen}, nil},
		{"same name, other family", []netlink.Message{msg(unix.NFT_MSG_DELTABLE, unix.NFPROTO_IPV4, name("berth")), gen}, nil},
		{"truncated", []netlink.Message{{Header: netlink.Header{Type: unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_DELTABLE}, Data: []byte{1}}, gen}, nil},
		{"other subsystem", []netlink.Message{{Header: netlink.Header{Type: 1<<8 | unix.NFT_MSG_DELTABLE}, Data: []byte{1, 0, 0, 0}}, gen}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tx txState
			var got *Change
			for _, m := range tc.msgs {
				if c, ok := tx.add(m); ok {
					got = &c
				}
			}
			if (got == nil) != (tc.want == nil) || got != nil && (got.PID != tc.want.PID || got.Comm != tc.want.Comm || !slices.Equal(got.What, tc.want.What)) {
				t.Errorf("change = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestCommittedHere: a transaction is berth's own when it came through a
// socket of one of the process's Firewalls (by netlink port ID), whatever
// thread or command name the kernel reports, and only while that Firewall
// is open. The reported thread ID and name decide nothing: inside a PID
// namespace the kernel's thread IDs are not the process's, and another
// daemon is called "berth" too (QA round 24).
func TestCommittedHere(t *testing.T) {
	ns := nstest.New(t)
	fw, err := New(ns, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if fw.portID == 0 {
		t.Fatal("the Firewall's socket has no port ID")
	}
	self := uint32(unix.Gettid())
	for _, tc := range []struct {
		ch   Change
		want bool
	}{
		{Change{PortID: fw.portID, PID: 4242, Comm: "nft"}, true},
		{Change{PortID: fw.portID + 1, PID: self, Comm: "berth"}, false},
		{Change{PortID: 0, PID: uint32(os.Getpid()), Comm: "berth"}, false},
	} {
		if got := committedHere(tc.ch); got != tc.want {
			t.Errorf("committedHere(%+v) = %v, want %v", tc.ch, got, tc.want)
		}
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	if committedHere(Change{PortID: fw.portID}) {
		t.Error("a closed Firewall's port ID still counts as this process's")
	}
}

// The watcher's receive buffer holds a 10,000-port batch's notifications
// even where net.core.rmem_max is far smaller (the daemon forces it).
func TestWatcherBufferPassesRmemMax(t *testing.T) {
	ns := nstest.New(t)
	conn, err := dialMonitor(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rc, err := conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var gerr error
	if err := rc.Control(func(fd uintptr) { got, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF) }); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	if got < monitorBuffer { // the kernel reports twice what was set
		t.Fatalf("watcher receive buffer %d bytes, want at least %d", got, monitorBuffer)
	}
}
