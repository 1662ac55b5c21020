package daemon

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/firewall/nftables"
	"github.com/berth-net/berth/internal/network"
)

func TestHostRouteConversion(t *testing.T) {
	_, vpn, _ := net.ParseCIDR("172.18.0.0/24")
	for _, tc := range []struct {
		name string
		in   netlink.Route
		dev  string
		want network.HostRoute
	}{
		{"prefix", netlink.Route{Dst: vpn, Table: 254}, "eth0",
			network.HostRoute{Dst: netip.MustParsePrefix("172.18.0.0/24"), Dev: "eth0", Table: 254}},
		{"default route", netlink.Route{Table: 100}, "",
			network.HostRoute{Dst: netip.MustParsePrefix("0.0.0.0/0"), Table: 100}},
		{"mapped address", netlink.Route{Dst: &net.IPNet{IP: net.ParseIP("10.1.0.0"), Mask: net.CIDRMask(16, 32)}}, "tun0",
			network.HostRoute{Dst: netip.MustParsePrefix("10.1.0.0/16"), Dev: "tun0"}},
		{"IPv6 prefix", netlink.Route{Dst: &net.IPNet{IP: net.ParseIP("fd00:77::"), Mask: net.CIDRMask(48, 128)}, Table: 254}, "wg0",
			network.HostRoute{Dst: netip.MustParsePrefix("fd00:77::/48"), Dev: "wg0", Table: 254}},
		{"IPv6 default route", netlink.Route{Family: unix.AF_INET6, Table: 254}, "eth0",
			network.HostRoute{Dst: netip.MustParsePrefix("::/0"), Dev: "eth0", Table: 254}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := hostRoute(tc.in, tc.dev); got != tc.want {
				t.Errorf("hostRoute = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestRouteWatchFailedWarnsOnlyWhileRunning: the subscription's receive
// fails when the daemon stops and closes it; that is no warning.
func TestRouteWatchFailedWarnsOnlyWhileRunning(t *testing.T) {
	var buf bytes.Buffer
	d := &Daemon{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	ctx, cancel := context.WithCancel(context.Background())
	d.routeWatchFailed(ctx, errors.New("Receive failed: boom"))
	if !strings.Contains(buf.String(), "level=WARN") {
		t.Errorf("a failure while running logged %q, want a warning", buf.String())
	}
	buf.Reset()
	cancel() // before the second after which it would follow the routes again
	d.routeWatchFailed(ctx, errors.New("Receive failed: resource temporarily unavailable"))
	if buf.Len() != 0 {
		t.Errorf("a failure while stopping logged %q, want nothing at info level", buf.String())
	}
}

// The pacer lets ten passes through in ten seconds, then makes each pass
// wait a second, and says so once.
func TestHealPacerSlowsAFight(t *testing.T) {
	var slept time.Duration
	p := healPacer{sleep: func(d time.Duration) { slept += d }}
	var log bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&log, nil))
	for range 10 {
		p.pace(logger)
	}
	if slept != 0 {
		t.Fatalf("ten passes slept %v, want none", slept)
	}
	p.pace(logger)
	p.pace(logger)
	if slept != 2*time.Second {
		t.Errorf("two more passes slept %v, want 2s", slept)
	}
	if n := strings.Count(log.String(), "keep being changed"); n != 1 {
		t.Errorf("warned %d times, want once:\n%s", n, log.String())
	}
}

// The retries back off from 100 ms, doubling, to at most 10 s.
func TestNextRetry(t *testing.T) {
	var got []time.Duration
	d := time.Duration(0)
	for range 9 {
		d = nextRetry(d)
		got = append(got, d)
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
		1600 * time.Millisecond, 3200 * time.Millisecond, 6400 * time.Millisecond, 10 * time.Second, 10 * time.Second}
	if !slices.Equal(got, want) {
		t.Errorf("back-off %v, want %v", got, want)
	}
}

// postRecorder stands for the nftables watcher: it keeps what is posted.
type postRecorder struct{ posted chan nftables.Change }

func (p postRecorder) Post(ch nftables.Change) { p.posted <- ch }

// A restore that fails is tried again after the back-off, posted to the
// watcher as a Retry (no other change may come to trigger it); one that
// succeeds resets the back-off and posts nothing.
func TestHealFirewallRetriesAFailedRestore(t *testing.T) {
	var log bytes.Buffer
	rec := postRecorder{posted: make(chan nftables.Change, 4)}
	fails := 1
	d := &Daemon{log: slog.New(slog.NewTextHandler(&log, nil)), fwWatch: rec}
	d.rebuildFirewall = func(context.Context) error {
		if fails > 0 {
			fails--
			return errors.New("netlink receive: cannot allocate memory")
		}
		return nil
	}
	t.Cleanup(func() {
		d.fwMu.Lock()
		if d.fwRetryTimer != nil {
			d.fwRetryTimer.Stop()
		}
		d.fwMu.Unlock()
	})
	d.healFirewall(nftables.Change{What: []string{"delete table"}, Comm: "nft", PID: 7})
	if d.fwRetry != 100*time.Millisecond {
		t.Fatalf("back-off after a failure %v, want 100ms", d.fwRetry)
	}
	var again nftables.Change
	select {
	case again = <-rec.posted:
	case <-time.After(10 * time.Second):
		t.Fatalf("no retry posted after a failed restore; log:\n%s", log.String())
	}
	if !again.Retry {
		t.Fatalf("posted %+v, want a Retry", again)
	}
	d.healFirewall(again)
	if d.fwRetry != 0 {
		t.Errorf("back-off after a restore that worked %v, want 0", d.fwRetry)
	}
	select {
	case ch := <-rec.posted:
		t.Errorf("a restore that worked posted %+v", ch)
	case <-time.After(300 * time.Millisecond):
	}
	for _, want := range []string{"restoring the nftables table failed", "restoring berth's nftables table again", "nftables table restored"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
}

// Once the watchers stop, a failed restore posts nothing.
func TestHealFirewallNoRetryAfterStop(t *testing.T) {
	d := &Daemon{log: slog.New(slog.DiscardHandler)}
	d.rebuildFirewall = func(context.Context) error { return errors.New("boom") }
	d.healFirewall(nftables.Change{Lost: true})
	d.fwMu.Lock()
	defer d.fwMu.Unlock()
	if d.fwRetryTimer != nil {
		t.Error("a retry was scheduled with no watcher")
	}
}

// A restore that works stops the retry an earlier failure set: the
// retry would rebuild the table once more for nothing.
func TestHealFirewallSuccessStopsTheRetry(t *testing.T) {
	rec := postRecorder{posted: make(chan nftables.Change, 4)}
	fails := 1
	d := &Daemon{log: slog.New(slog.DiscardHandler), fwWatch: rec}
	d.rebuildFirewall = func(context.Context) error {
		if fails > 0 {
			fails--
			return errors.New("boom")
		}
		return nil
	}
	d.healFirewall(nftables.Change{What: []string{"delete table"}})
	d.healFirewall(nftables.Change{What: []string{"delete table"}}) // another change, restored at once
	select {
	case ch := <-rec.posted:
		t.Errorf("a retry was posted after a restore that worked: %+v", ch)
	case <-time.After(500 * time.Millisecond): // the retry's back-off is 100 ms
	}
}
