package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/driver/bridge"
	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/firewall/nftables"
	"github.com/berth-net/berth/internal/network"
)

// This file keeps the daemon's view of the host honest while it runs:
// someone deleting or flushing berth's nftables table gets it put back at
// once, so does someone deleting a bridge or a veth of berth's or setting
// one down, and a route that starts overlapping a berth network (a VPN
// coming up) is reported in the log and in `network inspect`. All three
// listen to kernel notifications; none polls.

// startWatchers subscribes to nftables and route changes, and follows
// the host's resolv.conf (resolvwatch.go). It runs before the first
// reconcile, so no change after the daemon's start is missed.
func (d *Daemon) startWatchers() error {
	ctx, cancel := context.WithCancel(context.Background())
	fw, err := nftables.Watch(ctx, nftables.WatchConfig{
		Log:      d.log.With("component", "firewall-watch"),
		OnChange: d.healFirewall,
	})
	if err != nil {
		cancel()
		return fmt.Errorf("watch nftables: %w", err)
	}
	d.fwMu.Lock()
	d.fwWatch = fw
	d.fwMu.Unlock()
	d.linksGone = make(chan goneLink, 256)
	links, err := d.driver.WatchLinks(ctx, linkSettle, d.healLinks, d.linkGone)
	if err != nil {
		cancel()
		fw.Close()
		return fmt.Errorf("watch links: %w", err)
	}
	// Before the routes' watcher, which posts to it (a bridge's subnet
	// route deleted by hand).
	d.linkWatch = links
	if err := d.watchRoutes(ctx); err != nil {
		cancel()
		fw.Close()
		links.Close()
		return err
	}
	waitResolv, err := d.watchResolvConf(ctx)
	if err != nil {
		// Containers then keep the servers they started with, as Docker's do.
		d.log.Warn("not following the host's resolv.conf", "err", err)
		waitResolv = func() {}
	}
	d.stopWatchers = func() {
		cancel()
		fw.Close()
		links.Close()
		d.linksMu.Lock()
		if d.retryTimer != nil {
			d.retryTimer.Stop()
		}
		d.linksMu.Unlock()
		d.fwMu.Lock()
		if d.fwRetryTimer != nil {
			d.fwRetryTimer.Stop()
		}
		d.fwWatch = nil
		d.fwMu.Unlock()
		waitResolv()
	}
	return nil
}

// healFirewall restores berth's table after another process changed it.
// It runs on the nftables watcher's goroutine only. A restore that fails
// is tried again after a back-off (nextRetry), posted to the watcher, for
// no further change may come to trigger it; a program that keeps undoing
// the table is answered at most once a second (fwHeals).
func (d *Daemon) healFirewall(ch nftables.Change) {
	d.fwHeals.pace(d.log)
	if ch.Retry && len(ch.What) == 0 && !ch.Lost {
		d.log.Info("restoring berth's nftables table again", "change", ch.String())
	} else {
		d.log.Warn("berth's nftables table was changed by another process; restoring it", "change", ch.String())
	}
	start := time.Now()
	if err := d.rebuildFirewall(context.Background()); err != nil {
		d.fwRetry = nextRetry(d.fwRetry)
		d.log.Error("restoring the nftables table failed", "err", err, "again in", d.fwRetry.String())
		d.fwMu.Lock()
		defer d.fwMu.Unlock()
		if d.fwWatch == nil { // stopping
			return
		}
		w := d.fwWatch
		post := func() { w.Post(nftables.Change{Retry: true}) }
		if d.fwRetryTimer != nil {
			d.fwRetryTimer.Stop()
		}
		d.fwRetryTimer = time.AfterFunc(d.fwRetry, post)
		return
	}
	d.fwRetry = 0
	d.fwMu.Lock()
	if d.fwRetryTimer != nil {
		d.fwRetryTimer.Stop() // a retry of an earlier failure is not needed now
	}
	d.fwMu.Unlock()
	d.log.Info("nftables table restored", "took", time.Since(start).Round(time.Microsecond).String())
}

// linkSettle is how long link damage must be quiet before it is mended:
// `ip link del` of a bridge sends one notification per port, and one pass
// mends them all.
const linkSettle = 50 * time.Millisecond

// healLinks mends what someone did to berth's links (the bridge driver's
// WatchLinks reports it): bridges first, as a restart does, since a
// deleted bridge took its ports with it; then every sandbox with an
// endpoint to mend, under its container's lock, so that no connect,
// disconnect or exit of that container runs meanwhile. What berth itself
// removed (a leave, a network removal, an exit) is no longer in the
// records and is left out by Damaged.
func (d *Daemon) healLinks(dmg network.LinkDamage) {
	d.linksMu.Lock()
	if !d.linksReady {
		// The start's own reconcile mends what it finds; what changed
		// meanwhile is checked once it is done (linksStarted), so that
		// the two never work on one endpoint at once.
		d.linksMissed.Add(dmg)
		d.linksMu.Unlock()
		return
	}
	d.linksMu.Unlock()
	nets, sbs := d.net.Damaged(dmg)
	if len(nets) == 0 && len(sbs) == 0 {
		d.retryHeal(nil, nil)
		return
	}
	d.linkHeals.pace(d.log)
	start := time.Now()
	// A pass may find nothing left to do (one follows putting back a
	// veth moved to another bridge: the kernel releases it from that
	// bridge first), but each starts from a change berth did not make.
	d.log.Warn("berth's links were changed by another process; mending them", "changes", damageString(dmg), "networks", len(nets), "containers", len(sbs))
	var failedNets []string
	var failedSbs []network.DamagedSandbox
	for _, id := range nets {
		if err := d.net.HealBridge(id); err != nil {
			d.log.Error("mending a bridge failed", "network", id[:12], "err", err)
			if !onlyConflicts(err) { // a name taken by a link of someone else's stays taken
				failedNets = append(failedNets, id)
			}
		}
	}
	for _, sb := range sbs {
		cs := d.stateByID(sb.ContainerID)
		if cs == nil {
			continue
		}
		cs.mu.Lock()
		if !cs.goneLocked() && cs.c.Running() && cs.c.State.SandboxID == sb.ID {
			remade, err := d.net.HealSandbox(context.Background(), sb.ID)
			if len(remade) > 0 {
				d.log.Warn("made a container's veth again", "container", cs.c.ShortID(), "name", cs.c.Name, "endpoints", len(remade))
			}
			if err != nil {
				d.log.Error("mending a container's links failed", "container", cs.c.ShortID(), "name", cs.c.Name, "err", err)
				if !onlyConflicts(err) {
					failedSbs = append(failedSbs, sb)
				}
			}
		}
		cs.mu.Unlock()
	}
	d.log.Info("links mended", "took", time.Since(start).Round(time.Microsecond).String())
	d.retryHeal(failedNets, failedSbs)
}

// retryHeal hands what a pass could not mend back to the watcher after a
// back-off (nextRetry), while passes keep failing: the change that undid
// the mend may be one the watcher cannot see (a link deleted again before
// berth had tagged it; QA round 26, where a bridge deleted in a loop
// stayed missing once the loop stopped). One timer, stopped with the
// watchers.
func (d *Daemon) retryHeal(nets []string, sbs []network.DamagedSandbox) {
	if len(nets) == 0 && len(sbs) == 0 {
		d.healRetry = 0
		return
	}
	d.healRetry = nextRetry(d.healRetry)
	dmg := d.net.DamageOf(nets, sbs, "not mended yet")
	d.linksMu.Lock()
	defer d.linksMu.Unlock()
	d.retryDamage.Add(dmg)
	if d.retryTimer == nil {
		d.retryTimer = time.AfterFunc(d.healRetry, d.postRetry)
	} else {
		d.retryTimer.Reset(d.healRetry)
	}
	d.log.Info("mending again later", "in", d.healRetry.String(), "networks", len(nets), "containers", len(sbs))
}

// postRetry posts the damage retryHeal kept to the watcher.
func (d *Daemon) postRetry() {
	d.linksMu.Lock()
	dmg := d.retryDamage
	d.retryDamage = network.LinkDamage{}
	d.linksMu.Unlock()
	if dmg.Lost || len(dmg.Owners) > 0 {
		d.linkWatch.Post(dmg)
	}
}

// nextRetry is the back-off after prev: 100 ms, doubling up to 10 s.
func nextRetry(prev time.Duration) time.Duration {
	return min(max(2*prev, 100*time.Millisecond), 10*time.Second)
}

// onlyConflicts reports whether err is, all through, conflicts: a name
// another program's link holds, which trying again does not change (each
// endpoint's error of HealSandbox's list must be one).
func onlyConflicts(err error) bool { return errdefs.All(err, errdefs.KindConflict) }

// linksStarted lets healLinks mend from now on, and hands it what the
// watcher saw while the daemon started.
func (d *Daemon) linksStarted() {
	d.linksMu.Lock()
	d.linksReady = true
	missed := d.linksMissed
	d.linksMu.Unlock()
	if missed.Lost || len(missed.Owners) > 0 {
		d.linkWatch.Post(missed)
	}
}

// damageString is dmg for the log: each link and what happened to it.
func damageString(dmg network.LinkDamage) string {
	var parts []string
	if dmg.Lost {
		parts = append(parts, "notifications lost")
	}
	for _, what := range dmg.Owners {
		parts = append(parts, what)
	}
	slices.Sort(parts)
	return strings.Join(parts, "; ")
}

// healPacer slows the mending down when another program keeps undoing
// it (a network manager that owns bridges of the same names): past 10
// passes in 10 s, each pass waits a second first, and the log says so
// once, instead of the two programs fighting at full speed.
type healPacer struct {
	recent []time.Time
	warned bool
	sleep  func(time.Duration) // time.Sleep when nil; tests count instead
	// warning is logged once when the pacing starts; the links' when "".
	warning string
}

func (p *healPacer) pace(log *slog.Logger) {
	now := time.Now()
	p.recent = slices.DeleteFunc(p.recent, func(t time.Time) bool { return now.Sub(t) > 10*time.Second })
	if len(p.recent) >= 10 {
		if !p.warned {
			w := p.warning
			if w == "" {
				w = "berth's links keep being changed by another process; mending them at most once a second"
			}
			log.Warn(w)
			p.warned = true
		}
		if p.sleep == nil {
			p.sleep = time.Sleep
		}
		p.sleep(time.Second)
	} else {
		p.warned = false
	}
	p.recent = append(p.recent, time.Now())
}

// watchRoutes follows the host's routes in every table, starting
// with the ones that exist now.
func (d *Daemon) watchRoutes(ctx context.Context) error {
	updates := make(chan netlink.RouteUpdate, 64)
	// The routes that exist now are checked by scanRoutes once the
	// networks are loaded; this subscription sees every change after it.
	err := netlink.RouteSubscribeWithOptions(updates, ctx.Done(), netlink.RouteSubscribeOptions{
		ErrorCallback: func(err error) { d.routeWatchFailed(ctx, err) },
	})
	if err != nil {
		return fmt.Errorf("watch routes: %w", err)
	}
	go d.followRoutes(updates)
	return nil
}

// routeWatchFailed logs the error that ended the route subscription,
// unless the daemon is stopping (closing the subscription's socket fails
// its pending receive), and follows the routes again a second later: a
// burst of route changes larger than the socket's buffer ends it
// (ENOBUFS), and overlaps would go unnoticed until a restart.
func (d *Daemon) routeWatchFailed(ctx context.Context, err error) {
	if ctx.Err() != nil {
		d.log.Debug("route watcher stopped", "err", err)
		return
	}
	d.log.Warn("route watcher failed; following the host's routes again in a second", "err", err)
	time.AfterFunc(time.Second, func() { d.rewatchRoutes(ctx) })
}

// rewatchRoutes subscribes to route changes again and checks the routes
// that are there now, which the lost notifications may have changed.
func (d *Daemon) rewatchRoutes(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	if err := d.watchRoutes(ctx); err != nil {
		d.log.Warn("route watcher not made again; host routes that overlap networks are no longer noticed", "err", err)
		return
	}
	d.scanRoutes()
	d.log.Info("following the host's routes again")
}

// followRoutes turns route events into network warnings until the channel closes.
func (d *Daemon) followRoutes(updates <-chan netlink.RouteUpdate) {
	// A deleted route's interface may be gone already; remember each
	// route's device from when it was added.
	devs := map[string]string{}
	for {
		var u netlink.RouteUpdate
		select {
		case g := <-d.linksGone:
			d.forgetLink(g, devs)
			continue
		case upd, ok := <-updates:
			if !ok {
				return
			}
			u = upd
		}
		if u.Family != 0 && u.Family != unix.AF_INET && u.Family != unix.AF_INET6 {
			continue
		}
		r := hostRoute(u.Route, "")
		key := fmt.Sprintf("%s/%d/%d", r.Dst, r.Table, u.LinkIndex)
		switch u.Type {
		case unix.RTM_NEWROUTE:
			r.Dev = linkName(u.LinkIndex)
			if r.Dev == "" && u.LinkIndex != 0 {
				// Its device is gone already (a bridge deleted again
				// while it was being made), and took the route with it;
				// IPv4 says nothing of that, and the route would be
				// taken for someone else's overlapping one (QA round 26).
				continue
			}
			devs[key] = r.Dev
			for _, w := range d.net.NoteHostRoute(r) {
				d.log.Warn("host route overlaps a berth network", "warning", w)
			}
		case unix.RTM_DELROUTE:
			r.Dev = devs[key]
			if r.Dev == "" {
				r.Dev = linkName(u.LinkIndex) // "" when the link went first: matched without it
			}
			delete(devs, key)
			if cleared := d.net.ForgetHostRoute(r); len(cleared) > 0 {
				d.log.Info("overlapping host route removed", "route", r.String(), "networks", cleared)
			}
			if id, ok := d.net.SubnetRouteOwner(r); ok {
				// A bridge's own subnet route, deleted by another process:
				// mended as a bridge is (HealBridge puts it back).
				d.linkWatch.Post(d.net.DamageOf([]string{id}, nil, r.String()+" deleted"))
			}
		}
	}
}

// goneLink is a link of someone else's that was deleted.
type goneLink struct {
	index int
	name  string
}

// linkGone hands a deleted link to followRoutes, without waiting: it runs
// on the link watcher's thread. A link lost when the queue is full (a
// burst of hundreds) costs at most a stale warning.
func (d *Daemon) linkGone(index int, name string) {
	select {
	case d.linksGone <- goneLink{index, name}:
	default:
	}
}

// forgetLink drops what followRoutes knew of the routes of a deleted
// link, and the overlap warnings of the routes through it: IPv4 sends no
// route deletion for the routes a link takes with it, so the warning of
// a VPN's route would otherwise stay until the next start. When a link of
// that name exists again (a VPN that reconnected, whose new route came
// before the old link's deletion was read), the host's routes are checked
// afresh, so the new link's overlaps are warned about again.
func (d *Daemon) forgetLink(g goneLink, devs map[string]string) {
	suffix := fmt.Sprintf("/%d", g.index)
	for key := range devs {
		if strings.HasSuffix(key, suffix) {
			delete(devs, key)
		}
	}
	cleared := d.net.ForgetRoutesVia(g.name)
	if len(cleared) == 0 {
		return
	}
	d.log.Info("overlapping host routes removed with their interface", "interface", g.name, "networks", cleared)
	if _, err := netlink.LinkByName(g.name); err == nil {
		d.scanRoutes()
	}
}

// withRouteWarnings checks the host's routes in every table against a
// network just created (a --subnet the user chose may overlap a route that
// was there first) and returns the network with its warnings, which the
// create response carries as Docker's Warning.
func (d *Daemon) withRouteWarnings(n *network.Network) *network.Network {
	d.scanRoutes()
	if fresh, err := d.net.Network(n.ID); err == nil {
		return fresh
	}
	return n
}

// scanRoutes checks every route of every table, IPv4 and IPv6, against
// the networks: at start, once they are loaded, and after a network is
// created.
func (d *Daemon) scanRoutes() {
	routes, err := bridge.RetryDump(func() ([]netlink.Route, error) {
		return netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		d.log.Warn("listing host routes for overlaps", "err", err)
		return
	}
	names := linkNames()
	for _, r := range routes {
		dev, ok := names[r.LinkIndex]
		if !ok {
			dev = linkName(r.LinkIndex) // a link made since the list, or no list
		}
		for _, w := range d.net.NoteHostRoute(hostRoute(r, dev)) {
			d.log.Warn("host route overlaps a berth network", "warning", w)
		}
	}
}

// hostRoute is the core's view of a kernel route.
func hostRoute(r netlink.Route, dev string) network.HostRoute {
	out := network.HostRoute{Dev: dev, Table: r.Table}
	if r.Dst == nil { // a default route
		out.Dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if r.Family == unix.AF_INET6 {
			out.Dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		}
		return out
	}
	if a, ok := netip.AddrFromSlice(r.Dst.IP); ok {
		ones, _ := r.Dst.Mask.Size()
		out.Dst = netip.PrefixFrom(a.Unmap(), ones)
	}
	return out
}

// linkName is the name of the host's link of that index, "" for none.
// One RTM_GETLINK for that index: net.InterfaceByIndex dumps every link
// and every address of the host to find one, which with 500 containers'
// veths made a start's scan of the routes take 0.2 s and every route
// event a dump.
func linkName(index int) string {
	if index == 0 {
		return ""
	}
	if l, err := netlink.LinkByIndex(index); err == nil {
		return l.Attrs().Name
	}
	return ""
}

// linkNames maps the host's link indexes to names, from one dump; nil
// when the dump fails (linkName asks for each then).
func linkNames() map[int]string {
	links, err := bridge.RetryDump(netlink.LinkList)
	if err != nil {
		return nil
	}
	names := make(map[int]string, len(links))
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	return names
}
