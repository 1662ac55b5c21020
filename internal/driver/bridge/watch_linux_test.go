package bridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/berth-net/berth/internal/driverapi"
	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/nstest"
)

// watchReports starts a LinkWatcher on w's host and returns its reports.
func (w *testWorld) watchReports(t *testing.T) (<-chan driverapi.LinkDamage, *LinkWatcher) {
	t.Helper()
	reports := make(chan driverapi.LinkDamage, 64)
	lw, err := w.d.WatchLinks(context.Background(), 20*time.Millisecond, func(d driverapi.LinkDamage) { reports <- d }, nil)
	if err != nil {
		t.Fatalf("WatchLinks: %v", err)
	}
	t.Cleanup(func() { lw.Close() })
	return reports, lw
}

// expectDamage waits for a report that says what about owner, skipping
// other reports (a bridge's deletion may come as "set down", then, once
// the kernel's RCU wait is over, "deleted").
func expectDamage(t *testing.T, reports <-chan driverapi.LinkDamage, owner, what string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	var seen []string
	for {
		select {
		case d := <-reports:
			if got, ok := d.Owners[owner]; ok {
				if strings.Contains(got, what) {
					return
				}
				seen = append(seen, got)
			}
		case <-deadline:
			t.Fatalf("no report for %s saying %q; reports for it: %q", owner, what, seen)
		}
	}
}

// drain discards reports until none has come for a while.
func drain(reports <-chan driverapi.LinkDamage) {
	for {
		select {
		case <-reports:
		case <-time.After(300 * time.Millisecond):
			return
		}
	}
}

// expectQuiet checks that nothing is reported for a while.
func expectQuiet(t *testing.T, reports <-chan driverapi.LinkDamage, why string) {
	t.Helper()
	select {
	case d := <-reports:
		t.Errorf("%s: reported %+v, want nothing", why, d)
	case <-time.After(300 * time.Millisecond):
	}
}

// TestWatchLinksReportsWhatOthersDoToBerthsLinks: a host end set down,
// taken off its bridge or deleted, a bridge's address deleted, the bridge
// deleted: each is reported under its owner's tag, so the daemon can mend
// it while it runs. berth's own leave (the reaper's group) and other
// people's links are not reported.
func TestWatchLinksReportsWhatOthersDoToBerthsLinks(t *testing.T) {
	w := newWorld(t)
	spec1 := w.joinSettled(t, 1)
	spec2 := endpointSpec(2)
	sb2 := nstest.New(t)
	if err := w.d.Join(sb2, spec2); err != nil {
		t.Fatal(err)
	}
	reports, _ := w.watchReports(t)

	// Not berth's: a bridge of the administrator's, up, down, gone.
	admin := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "admin0"}}
	if err := w.h.LinkAdd(admin); err != nil {
		t.Fatal(err)
	}
	for _, op := range []func(netlink.Link) error{w.h.LinkSetUp, w.h.LinkSetDown, w.h.LinkDel} {
		if err := op(admin); err != nil {
			t.Fatal(err)
		}
	}
	// berth's own: a join and a leave.
	spec3, sb3 := endpointSpec(3), nstest.New(t)
	if err := w.d.Join(sb3, spec3); err != nil {
		t.Fatal(err)
	}
	if err := w.d.Leave(sb3, spec3); err != nil {
		t.Fatal(err)
	}
	w.d.Settle() // the reaper deletes the pair
	expectQuiet(t, reports, "an admin's link and berth's own join and leave")

	host1, err := w.h.LinkByName(spec1.HostIfName)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.h.LinkSetDown(host1); err != nil {
		t.Fatal(err)
	}
	expectDamage(t, reports, spec1.Owner, spec1.HostIfName+" set down")
	if err := w.h.LinkSetUp(host1); err != nil {
		t.Fatal(err)
	}
	expectQuiet(t, reports, "a host end set up again")
	if err := w.h.LinkSetNoMaster(host1); err != nil {
		t.Fatal(err)
	}
	expectDamage(t, reports, spec1.Owner, "taken off its bridge")
	other := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "admin1"}}
	if err := w.h.LinkAdd(other); err != nil {
		t.Fatal(err)
	}
	if err := w.h.LinkSetMaster(host1, other); err != nil {
		t.Fatal(err)
	}
	expectDamage(t, reports, spec1.Owner, "moved to a bridge not berth's")
	if ok, err := w.d.Adopt("", spec1); !ok || err != nil {
		t.Fatalf("Adopt = %v, %v", ok, err)
	}
	// Moving it back passes through "no bridge" (the kernel releases it
	// from admin1 first): a later pass finds it whole.
	drain(reports)
	if ports := portsOf(t, w.h, "br-test"); !slices.Contains(ports, spec1.HostIfName) {
		t.Fatalf("%s not back on br-test after Adopt: %v", spec1.HostIfName, ports)
	}

	br, err := w.h.LinkByName("br-test")
	if err != nil {
		t.Fatal(err)
	}
	gw, _ := netlink.ParseAddr(testGateway.String())
	if err := w.h.AddrDel(br, gw); err != nil {
		t.Fatal(err)
	}
	expectDamage(t, reports, "network:test", "br-test lost an address")

	host2, err := w.h.LinkByName(spec2.HostIfName)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.h.LinkDel(host2); err != nil {
		t.Fatal(err)
	}
	expectDamage(t, reports, spec2.Owner, spec2.HostIfName+" deleted")

	if err := w.h.LinkDel(br); err != nil {
		t.Fatal(err)
	}
	expectDamage(t, reports, "network:test", "br-test deleted")
}

// After Close, the watcher reports nothing more.
func TestWatchLinksCloseEndsReports(t *testing.T) {
	w := newWorld(t)
	w.ensureTestBridge(t)
	reports, lw := w.watchReports(t)
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	br, err := w.h.LinkByName("br-test")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.h.LinkSetDown(br); err != nil {
		t.Fatal(err)
	}
	expectQuiet(t, reports, "a bridge set down after Close")
}

// Adopt sets up a host end that someone set down (its container was
// cut off: a veth delivers nothing through a down end).
func TestAdoptSetsUpAHostEndSetDown(t *testing.T) {
	w := newWorld(t)
	spec := w.joinSettled(t, 1)
	host, err := w.h.LinkByName(spec.HostIfName)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.h.LinkSetDown(host); err != nil {
		t.Fatal(err)
	}
	if ok, err := w.d.Adopt("", spec); !ok || err != nil {
		t.Fatalf("Adopt = %v, %v; want true", ok, err)
	}
	if host, err = w.h.LinkByName(spec.HostIfName); err != nil {
		t.Fatal(err)
	}
	if host.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("%s is down after Adopt", spec.HostIfName)
	}
}

func TestParseAddrMessageRejectsShortMessages(t *testing.T) {
	if _, _, ok := parseAddrMessage(make([]byte, 7)); ok {
		t.Error("a 7-byte ifaddrmsg parsed")
	}
	if _, err := parseLinkMessage(make([]byte, 15)); err == nil {
		t.Error("a 15-byte ifinfomsg parsed")
	}
}

// A Join that fails after tagging the host end deletes it as berth's own
// (the reaper's group first): the watcher reports nothing, so a heal
// whose Join fails is not answered by another heal, for good (review of
// session 18: a mend failing on the container's side looped once a
// second).
func TestWatchLinksIgnoresAFailedJoinsRollback(t *testing.T) {
	w := newWorld(t)
	w.ensureTestBridge(t)
	reports, _ := w.watchReports(t)
	w.d.failAt = func(step string) error {
		if step == "peer up" {
			return errors.New("injected failure")
		}
		return nil
	}
	spec, sb := endpointSpec(1), nstest.New(t)
	if err := w.d.Join(sb, spec); err == nil {
		t.Fatal("Join succeeded despite the injected failure")
	}
	if ok, _ := w.d.LinkExists(spec.HostIfName); ok {
		t.Fatalf("%s left behind by the failed Join", spec.HostIfName)
	}
	expectQuiet(t, reports, "a failed Join's rollback")
}

// A burst that never goes quiet is still reported, after 20 settles.
func TestLinkWatcherReportsAnEndlessBurst(t *testing.T) {
	reports := make(chan driverapi.LinkDamage, 1)
	w := &LinkWatcher{settle: 20 * time.Millisecond, kick: make(chan driverapi.LinkDamage, 1), done: make(chan struct{}),
		report: func(d driverapi.LinkDamage) {
			select {
			case reports <- d:
			default:
			}
		}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.ended.Add(1)
	go w.deliver(ctx)
	flap := time.NewTicker(5 * time.Millisecond) // faster than the settle
	defer flap.Stop()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case d := <-reports:
			if d.Owners["endpoint:1"] != "veth1 set down" {
				t.Errorf("reported %+v", d)
			}
			return
		case <-flap.C:
			w.post(driverapi.LinkDamage{Owners: map[string]string{"endpoint:1": "veth1 set down"}})
		case <-deadline:
			t.Fatal("a link flapping without end was never reported")
		}
	}
}

// A host end moved into another namespace by hand leaves the container
// end in the sandbox under the endpoint's name; Leave deletes it (and so
// the moved end), so that the heal's Join can make the pair again.
func TestLeaveDeletesAContainerEndWhoseHostEndWasMovedAway(t *testing.T) {
	w := newWorld(t)
	spec, sbPath := w.joinSettledIn(t, 1)
	other := nstest.New(t)
	ns, err := os.Open(other)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	host, err := w.h.LinkByName(spec.HostIfName)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.h.LinkSetNsFd(host, int(ns.Fd())); err != nil {
		t.Fatal(err)
	}
	if err := w.d.Leave(sbPath, spec); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	if names := linkNames(t, handleIn(t, sbPath)); slices.Contains(names, spec.IfName) {
		t.Fatalf("%s is still in the sandbox: %v", spec.IfName, names)
	}
	if err := w.d.Join(sbPath, spec); err != nil {
		t.Fatalf("Join after Leave: %v", err)
	}
	checkJoined(t, w, sbPath, spec)
}

// A link an administrator makes under the name of a deleted host end is
// not berth's: Adopt refuses to take it over (it once put it on the
// bridge, tagged it and set it up), and Leave leaves it alone (it once
// deleted it at the container's next restart).
func TestAdoptAndLeaveKeepOffAnotherLinkOfTheName(t *testing.T) {
	w := newWorld(t)
	spec, sbPath := w.joinSettledIn(t, 1)
	host, err := w.h.LinkByName(spec.HostIfName)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.h.LinkDel(host); err != nil {
		t.Fatal(err)
	}
	admin := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: spec.HostIfName}, PeerName: "adminpeer"}
	if err := w.h.LinkAdd(admin); err != nil {
		t.Fatal(err)
	}
	if ok, err := w.d.Adopt(sbPath, spec); ok || !errdefs.Is(err, errdefs.KindConflict) {
		t.Errorf("Adopt of an administrator's link = %v, %v; want false and a conflict", ok, err)
	}
	if err := w.d.Leave(sbPath, spec); err != nil {
		t.Errorf("Leave: %v", err)
	}
	w.d.Settle()
	l, err := w.h.LinkByName(spec.HostIfName)
	if err != nil {
		t.Fatalf("the administrator's link is gone: %v", err)
	}
	if l.Attrs().MasterIndex != 0 || l.Attrs().Alias != "" || l.Attrs().Group == reapGroup {
		t.Errorf("the administrator's link was touched: master %d alias %q group %#x", l.Attrs().MasterIndex, l.Attrs().Alias, l.Attrs().Group)
	}
}

// A host end whose alias someone changed is still the endpoint's (its
// peer is the endpoint's container end): Adopt tags it again, so that the
// link watcher sees it; without the sandbox to prove it, it is refused.
func TestAdoptTagsAgainAHostEndWhoseAliasWasChanged(t *testing.T) {
	w := newWorld(t)
	spec, sbPath := w.joinSettledIn(t, 1)
	host, err := w.h.LinkByName(spec.HostIfName)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.h.LinkSetAlias(host, "stolen"); err != nil {
		t.Fatal(err)
	}
	if ok, err := w.d.Adopt("", spec); ok || !errdefs.Is(err, errdefs.KindConflict) {
		t.Errorf("Adopt without the sandbox = %v, %v; want false and a conflict", ok, err)
	}
	if ok, err := w.d.Adopt(sbPath, spec); !ok || err != nil {
		t.Fatalf("Adopt = %v, %v; want true", ok, err)
	}
	if host, err = w.h.LinkByName(spec.HostIfName); err != nil {
		t.Fatal(err)
	}
	if host.Attrs().Alias != ownerAlias(spec.Owner) {
		t.Errorf("alias after Adopt %q, want %q", host.Attrs().Alias, ownerAlias(spec.Owner))
	}
}

// joinSettledIn is joinSettled that also returns the sandbox's path.
func (w *testWorld) joinSettledIn(t *testing.T, n int) (driverapi.EndpointSpec, string) {
	t.Helper()
	w.ensureTestBridge(t)
	spec, sbPath := endpointSpec(n), nstest.New(t)
	if err := w.d.Join(sbPath, spec); err != nil {
		t.Fatal(err)
	}
	w.d.Settle()
	return spec, sbPath
}

// A host end renamed by hand is still the endpoint's: Leave, finding no
// link of the old name, deletes the container end, which takes the
// renamed host end with it (it had stayed a port of the bridge while the
// address went to the next container), and the pair can be made again.
func TestLeaveDeletesAPairWhoseHostEndWasRenamed(t *testing.T) {
	w := newWorld(t)
	spec, sbPath := w.joinSettledIn(t, 1)
	host, err := w.h.LinkByName(spec.HostIfName)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.h.LinkSetDown(host); err != nil {
		t.Fatal(err)
	}
	if err := w.h.LinkSetName(host, "renamed0"); err != nil {
		t.Fatal(err)
	}
	if err := w.d.Leave(sbPath, spec); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	w.d.Settle()
	if names := linkNames(t, w.h); slices.Contains(names, "renamed0") {
		t.Errorf("the renamed host end is still there: %v", names)
	}
	if err := w.d.Join(sbPath, spec); err != nil {
		t.Fatalf("Join after Leave: %v", err)
	}
	checkJoined(t, w, sbPath, spec)
}

// BenchmarkJoinWatched: a Join with the link watcher running against
// one without, alternating with -count: the watcher reads every link
// notification a Join causes in the host namespace (a few per Join) on
// a goroutine of its own, and must not make the attach slower.
func BenchmarkJoinWatched(b *testing.B) {
	for _, watched := range []bool{false, true} {
		b.Run(fmt.Sprintf("watcher=%v", watched), func(b *testing.B) {
			w := newWorld(b)
			w.d.log = discardLogger()
			w.ensureBenchBridge(b)
			if watched {
				lw, err := w.d.WatchLinks(context.Background(), 50*time.Millisecond, func(driverapi.LinkDamage) {}, nil)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { lw.Close() })
			}
			sb := newBenchSandbox(b)
			var join []time.Duration
			b.ResetTimer()
			for i := range b.N {
				spec := sampleSpec(i)
				t0 := time.Now()
				if err := w.d.Join(sb, spec); err != nil {
					b.Fatalf("Join #%d: %v", i, err)
				}
				join = append(join, time.Since(t0))
				if err := w.d.Leave(sb, spec); err != nil {
					b.Fatalf("Leave #%d: %v", i, err)
				}
				w.d.Settle()
			}
			b.StopTimer()
			reportPercentiles(b, "join", join)
		})
	}
}

// TestWatchLinksTellsOfOthersLinksGone: gone hears of every link of
// someone else's that is deleted (with its ifindex and name, for the
// daemon's route warnings), and of none of berth's: not a pair its leave
// has the reaper delete, not the host end of a failed join.
func TestWatchLinksTellsOfOthersLinksGone(t *testing.T) {
	w := newWorld(t)
	w.ensureTestBridge(t)
	type link struct {
		index int
		name  string
	}
	gone := make(chan link, 64)
	lw, err := w.d.WatchLinks(context.Background(), 20*time.Millisecond, func(driverapi.LinkDamage) {}, func(index int, name string) { gone <- link{index, name} })
	if err != nil {
		t.Fatalf("WatchLinks: %v", err)
	}
	t.Cleanup(func() { lw.Close() })

	// berth's own: a join and a leave.
	spec, sb := endpointSpec(3), nstest.New(t)
	if err := w.d.Join(sb, spec); err != nil {
		t.Fatal(err)
	}
	if err := w.d.Leave(sb, spec); err != nil {
		t.Fatal(err)
	}
	w.d.Settle()
	// An administrator's VPN device.
	vpn := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "vpn0"}, PeerName: "vpn0p"}
	if err := w.h.LinkAdd(vpn); err != nil {
		t.Fatal(err)
	}
	l, err := w.h.LinkByName("vpn0")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.h.LinkDel(l); err != nil {
		t.Fatal(err)
	}
	var heard []link
	deadline := time.After(5 * time.Second)
	for !slices.Contains(heard, link{l.Attrs().Index, "vpn0"}) {
		select {
		case g := <-gone:
			heard = append(heard, g)
		case <-deadline:
			t.Fatalf("gone never heard of vpn0 (index %d); heard %v", l.Attrs().Index, heard)
		}
	}
	for _, g := range heard {
		if g.name != "vpn0" && g.name != "vpn0p" {
			t.Errorf("gone heard of %s (index %d), which is berth's", g.name, g.index)
		}
	}
}
