package daemon

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/dns"
)

// Docker's upstreams when the host has only loopback resolvers.
var fallbackUpstreams = []netip.AddrPort{
	netip.MustParseAddrPort("8.8.8.8:53"),
	netip.MustParseAddrPort("8.8.4.4:53"),
}

// newDNS builds the resolvers' manager over the network controller's names.
func (d *Daemon) newDNS() *dns.Manager {
	return dns.NewManager(dns.Config{Names: d.net, Log: d.log.With("component", "dns")})
}

// startDNS gives a container that is on a user-defined network its
// resolver, inside its sandbox. Call it after the container's endpoints
// are joined and before its resolv.conf is written.
func (d *Daemon) startDNS(c *container.Container) error {
	sbID := c.State.SandboxID
	if sbID == "" || c.State.SandboxKey == "" || !d.net.NameResolution(sbID) {
		return nil
	}
	return d.dns.Start(dns.Sandbox{ID: sbID, Path: c.State.SandboxKey, Upstreams: d.upstreamsFor(c)})
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

// connectDNS follows a live `network connect`: a running container that
// just got its first user-defined network gets a resolver and a
// resolv.conf naming it. Errors are logged: the endpoint is joined already.
func (d *Daemon) connectDNS(c *container.Container) {
	if d.dnsRunning(c.State.SandboxID) {
		return
	}
	if err := d.startDNS(c); err != nil {
		d.log.Error("start DNS resolver after connect", "name", c.Name, "err", err)
		return
	}
	if !d.dnsRunning(c.State.SandboxID) {
		return
	}
	if err := writeInPlace(c.ResolvConfPath, d.resolvConfFor(c)); err != nil {
		d.log.Error("rewrite resolv.conf after connect", "name", c.Name, "err", err)
	}
}

// restoreDNS re-creates the resolver of a running container a restarted
// daemon re-adopted (the old daemon's sockets died with it).
func (d *Daemon) restoreDNS(c *container.Container) {
	if err := d.startDNS(c); err != nil {
		d.log.Error("re-create DNS resolver", "name", c.Name, "err", err)
	}
}

// dnsRunning reports whether the sandbox has a resolver (never, for a
// daemon built without one, as some tests build it).
func (d *Daemon) dnsRunning(sandboxID string) bool {
	return d.dns != nil && sandboxID != "" && d.dns.Running(sandboxID)
}

// upstreamsFor is where a container's resolver forwards: its --dns servers,
// else the host's resolvers without loopback ones, else Docker's fallback.
func (d *Daemon) upstreamsFor(c *container.Container) []netip.AddrPort {
	var ups []netip.AddrPort
	for _, s := range c.Config.DNS {
		if a, err := netip.ParseAddr(s); err == nil {
			ups = append(ups, netip.AddrPortFrom(a.Unmap(), 53))
		}
	}
	if len(ups) > 0 {
		return ups
	}
	for _, a := range d.resolv.get().nameservers {
		if !a.IsLoopback() {
			ups = append(ups, netip.AddrPortFrom(a.Unmap(), 53))
		}
	}
	if len(ups) == 0 {
		return fallbackUpstreams
	}
	return ups
}

// embeddedResolvConf is the resolv.conf of a container served by a
// resolver, as Docker writes it: the search domains, 127.0.0.11, and
// ndots:0 (unless the user set ndots) so that single names are asked as
// they are, first, from the resolver that knows them.
func (d *Daemon) embeddedResolvConf(c *container.Container) (string, bool) {
	if !d.dnsRunning(c.State.SandboxID) {
		return "", false
	}
	rc := d.resolv.get()
	search, opts := rc.search, withoutNdots(rc.options)
	if len(c.Config.DNSSearch) > 0 {
		search = c.Config.DNSSearch
	}
	if len(c.Config.DNSOptions) > 0 {
		opts = c.Config.DNSOptions
	}
	if !hasNdots(opts) {
		opts = append([]string{"ndots:0"}, opts...)
	}
	var b strings.Builder
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	fmt.Fprintf(&b, "nameserver %s\n", dns.Address)
	fmt.Fprintf(&b, "options %s\n", strings.Join(opts, " "))
	return b.String(), true
}

func hasNdots(opts []string) bool {
	for _, o := range opts {
		if strings.HasPrefix(o, "ndots:") {
			return true
		}
	}
	return false
}

func withoutNdots(opts []string) []string {
	var out []string
	for _, o := range opts {
		if !strings.HasPrefix(o, "ndots:") {
			out = append(out, o)
		}
	}
	return out
}
