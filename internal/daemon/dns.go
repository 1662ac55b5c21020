package daemon

import (
	"net/netip"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/dns"
	"github.com/berth-net/berth/internal/firewall/nftables"
	"github.com/berth-net/berth/internal/network"
)

// newDNS builds the resolvers' manager over the network controller's names.
func (d *Daemon) newDNS() *dns.Manager {
	return dns.NewManager(dns.Config{Names: d.net, Log: d.log.With("component", "dns"),
		Listen: dns.ListenInNamespace(nftables.RedirectDNSHere, nftables.DNSRedirected)})
}

// startDNS gives a container that is on a user-defined network its
// resolver, inside its sandbox. Call it after the container's endpoints
// are joined and before its resolv.conf is written.
func (d *Daemon) startDNS(c *container.Container, again bool) error {
	if !d.net.NameResolution(c.State.SandboxID) {
		return nil
	}
	sb, ok := d.resolverSandbox(c, again)
	if !ok {
		return nil
	}
	return d.dns.Start(sb)
}

// resolverSandbox is what the DNS manager needs to start c's resolver;
// ok is false when c has no sandbox.
func (d *Daemon) resolverSandbox(c *container.Container, again bool) (dns.Sandbox, bool) {
	sbID := c.State.SandboxID
	if sbID == "" || c.State.SandboxKey == "" {
		return dns.Sandbox{}, false
	}
	_, upstreams, ndotsSet := d.resolverConf(c)
	// A container's own --dns servers are asked from its namespace, as
	// Docker asks them; the host's from the daemon's (see resolverConf).
	return dns.Sandbox{ID: sbID, Path: c.State.SandboxKey, Upstreams: upstreams, NdotsSet: ndotsSet,
		UpstreamsInSandbox: d.dnsServersSet(c), Again: again}, true
}

// resolverBeside starts c's resolver in the background when want says
// the joins about to run give its sandbox its first network with name
// resolution (see network.Network.Discoverable): its sockets and its
// redirect, the namespace's first nftables table (0.4 ms here, most of a
// first connect's extra), are then made while the joins do
// their own kernel work, which takes the RTNL lock the redirect does not
// need. The returned func waits for the start and gives its error; call
// it on every path, failed joins included: a resolver that came up after
// the caller's Stop would hold the namespace open. then, if not nil, runs
// after a start that succeeded, still beside the joins.
func (d *Daemon) resolverBeside(c *container.Container, want bool, then func()) (wait func() error) {
	none := func() error { return nil }
	if !want || d.dns == nil {
		return none // without resolverSandbox's look at the host's resolv.conf
	}
	sb, ok := d.resolverSandbox(c, false)
	if !ok {
		return none
	}
	errc := make(chan error, 1)
	go func() {
		err := d.dns.Start(sb)
		if err == nil && then != nil {
			then()
		}
		errc <- err
	}()
	return func() error { return <-errc }
}

// stopDNS closes the resolver of a sandbox, if it has one. Its sockets
// keep the namespace alive, so call it when the sandbox goes.
func (d *Daemon) stopDNS(sandboxID string) {
	if sandboxID == "" || d.dns == nil {
		return
	}
	if err := d.dns.Stop(sandboxID); err != nil {
		d.log.Warn("stop DNS resolver", "sandbox", sandboxID[:min(12, len(sandboxID))], "err", err)
	}
}

// anyDiscoverable reports whether one of the named networks has name
// resolution: a sandbox that joins them all needs a resolver.
func (d *Daemon) anyDiscoverable(names []string) bool {
	return slices.ContainsFunc(names, func(name string) bool {
		n, err := d.net.Network(name)
		return err == nil && n.Discoverable()
	})
}

// connectDNS follows a live `network connect` to n, begun before its
// join: a running container that gets its first user-defined network
// gets a resolver (started beside the join, see resolverBeside) and a
// resolv.conf naming it. The returned func ends it once the join has
// returned: it stops the resolver again when the join failed, and
// otherwise rewrites resolv.conf. Errors are logged: the endpoint is
// joined already.
//
// What the rewrite needs (is the file edited, what it says now that the
// resolver runs) is read beside the join as well, after the resolver's
// start (a first connect's resolv.conf, 0.1 ms, came after the join).
// The connect holds c meanwhile, and changes none of what is read of it
// here (only its networks, once joined). The file's stamp is taken with
// it and looked at again before the write: an edit in the container
// meanwhile has the file read again, so that it is never written over.
func (d *Daemon) connectDNS(c *container.Container, n *network.Network) (joined func(ok bool)) {
	first := d.dns != nil && n.Discoverable() && !d.dnsRunning(c.State.SandboxID)
	var (
		read   bool // by the resolver's goroutine: it ran then
		edited bool
		conf   string
		seen   fileStamp
	)
	readConf := func() {
		read, seen = true, stampOf(c.ResolvConfPath)
		if edited = resolvConfEdited(c.ResolvConfPath); !edited {
			conf = d.resolvConfFor(c)
		}
	}
	wait := d.resolverBeside(c, first, readConf)
	return func(ok bool) {
		err := wait()
		if first && ok && err == nil && (!read || stampOf(c.ResolvConfPath) != seen) {
			readConf()
		}
		switch {
		case !first:
		case !ok:
			// And its redirect, which points at nothing now.
			d.stopDNS(c.State.SandboxID)
			if err == nil {
				if err := nftables.UnredirectDNS(c.State.SandboxKey); err != nil {
					d.log.Warn("remove the DNS redirect after a failed connect", "name", c.Name, "err", err)
				}
			}
		case err != nil:
			d.log.Error("start DNS resolver after connect", "name", c.Name, "err", err)
		case edited:
			d.log.Info("resolv.conf was edited in the container: not rewritten for the resolver", "name", c.Name)
		default:
			// Without a new hash, as libnetwork's rebuildDNS: from now on
			// the file counts as edited, and nothing rewrites it.
			if err := writeInPlace(c.ResolvConfPath, conf); err != nil {
				d.log.Error("rewrite resolv.conf after connect", "name", c.Name, "err", err)
			}
		}
	}
}

// restoreDNS re-creates the resolver of a running container a restarted
// daemon re-adopted: on the sockets the daemon before left (kept, see
// keepResolvers), which it then had whatever its networks, or else anew
// when it is on a user-defined network (the old daemon's sockets died
// with it).
func (d *Daemon) restoreDNS(c *container.Container, kept *dns.Sockets) {
	var err error
	if sb, ok := d.resolverSandbox(c, true); ok && kept != nil {
		sb.Kept = kept
		err = d.dns.Start(sb)
	} else {
		if kept != nil {
			kept.Close()
		}
		err = d.startDNS(c, true)
	}
	if err != nil {
		d.log.Error("re-create DNS resolver", "name", c.Name, "err", err)
	}
	// The host's file may have changed while no daemon ran: the
	// container's follows it as a change seen live does
	// (refreshUpstreams), so that it agrees with the resolver, which
	// took the host's servers and options just now. Docker keeps what it
	// had recorded for both.
	if len(d.resolv.get().nameservers) > 0 {
		if _, err := d.followHostResolvConf(c); err != nil {
			d.log.Warn("rewrite resolv.conf after the host's changed", "name", c.Name, "err", err)
		}
	}
}

// dnsRunning reports whether the sandbox has a resolver (never, for a
// daemon built without one, as some tests build it).
func (d *Daemon) dnsRunning(sandboxID string) bool {
	return d.dns != nil && sandboxID != "" && d.dns.Running(sandboxID)
}

// resolverConf is, for a container served by a resolver, its resolv.conf,
// the servers its resolver forwards to (port 53 of each), and whether
// ndots was set (then single-label names are not forwarded). The
// upstreams are the host's servers, loopback ones included: the resolver
// forwards from the host's namespace, where they answer (Docker's
// HostLoopback), so a host on systemd-resolved's 127.0.0.53 works. Or
// the container's --dns servers, as given, which it asks from the
// container's namespace (a --dns 127.0.0.1 is a server in the container).
// With none at all it forwards nothing (forResolver).
func (d *Daemon) resolverConf(c *container.Container) (resolvConf, []netip.AddrPort, bool) {
	rc := d.resolv.get().withOverrides(d.dnsSettings(c))
	ndotsSet := rc.ndotsSet()
	rc, servers := rc.forResolver(dns.Address)
	var ups []netip.AddrPort
	for _, a := range servers {
		ups = append(ups, netip.AddrPortFrom(a, 53))
	}
	return rc, ups, ndotsSet
}

// dnsSettings are c's --dns, --dns-search and --dns-option, each the
// daemon's (its own --dns…) where c gives none, as dockerd's
// buildSandboxOptions picks them.
func (d *Daemon) dnsSettings(c *container.Container) (servers, search, options []string) {
	servers, search, options = c.Config.DNS, c.Config.DNSSearch, c.Config.DNSOptions
	if len(servers) == 0 {
		servers = d.netSettings.dns
	}
	if len(search) == 0 {
		search = d.cfg.DNSSearch
	}
	if len(options) == 0 {
		options = d.cfg.DNSOptions
	}
	return servers, search, options
}

// dnsServersSet reports whether c's DNS servers are given (by it or by
// the daemon's --dns) rather than the host's: they are asked from the
// container's namespace, and a change of the host's resolv.conf leaves
// them alone.
func (d *Daemon) dnsServersSet(c *container.Container) bool {
	return len(c.Config.DNS) > 0 || len(d.netSettings.dns) > 0
}

// fileStamp is what a stat says of a file's identity and last change: a
// write to it changes its size or its times (a missing file is the zero
// stamp).
type fileStamp struct {
	ino, size  int64
	mtim, ctim unix.Timespec
}

func stampOf(path string) fileStamp {
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil {
		return fileStamp{}
	}
	return fileStamp{ino: int64(st.Ino), size: st.Size, mtim: st.Mtim, ctim: st.Ctim}
}
