package daemon

import (
	"net/netip"
	"strings"

	"github.com/berth-net/berth/internal/dns"
	"github.com/berth-net/berth/internal/network"
	"golang.org/x/sys/unix"
)

// A daemon stopped with SIGTERM leaves sockets with its reaper, which
// outlives it, for the next daemon to serve (runtime.Keep and Kept):
//
//   - its DNS resolvers' two listening sockets, by sandbox ID. A
//     container's lookups while no daemon runs wait in them and are
//     answered once the next one serves (0.3–0.8 s for 100–500
//     containers here) instead of refused: the redirect in the
//     container's namespace points at their ports either way. Dockerd's
//     resolvers die with it.
//   - the sockets holding its published host ports, by port
//     ("port:tcp/[::]:8080"). No other process can take a published port
//     while no daemon runs, and an IPv6 port the daemon proxies to an
//     IPv4 container goes on listening: a client's connection waits in
//     its backlog and is carried once the next daemon serves, where it
//     was refused. (docker-proxy, a process per port, outlives dockerd
//     with live-restore; berth's proxy lives in the daemon.) The
//     connections the proxy carried are cut by the stop.
//
// A daemon killed keeps nothing, and its successor binds anew. The cost: a
// daemon stopped for good leaves those sockets open, lookups and proxied
// connections waiting rather than refused, until the reaper lets them go,
// 10 s after the stop.

// portKeyPrefix starts the keys of host ports' sockets; the resolvers'
// keys are sandbox IDs (hex).
const portKeyPrefix = "port:"

// portKey is hp's key among the kept sockets: "port:tcp/0.0.0.0:8080".
func portKey(hp network.HostPort) string {
	return portKeyPrefix + hp.Proto + "/" + netip.AddrPortFrom(hp.HostIP, hp.Port).String()
}

// parsePortKey reads a key portKey made.
func parsePortKey(key string) (network.HostPort, bool) {
	rest, ok := strings.CutPrefix(key, portKeyPrefix)
	if !ok {
		return network.HostPort{}, false
	}
	proto, addr, ok := strings.Cut(rest, "/")
	if !ok || proto == "" {
		return network.HostPort{}, false
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || ap.Port() == 0 {
		return network.HostPort{}, false
	}
	return network.HostPort{Proto: proto, HostIP: ap.Addr(), Port: ap.Port()}, true
}

// keepSockets, as the daemon stops, leaves its resolvers' and published
// ports' sockets with the reaper (see above).
func (d *Daemon) keepSockets() {
	if d.runtime == nil {
		return
	}
	fds := map[string][]int{}
	var resolvers map[string]dns.Sockets
	if d.dns != nil {
		resolvers = d.dns.Detach()
		for id, s := range resolvers {
			fds[id] = []int{s.UDP, s.TCP}
		}
	}
	var ports map[network.HostPort]int
	if d.ports != nil {
		ports = d.ports.Detach()
		for hp, fd := range ports {
			fds[portKey(hp)] = []int{fd}
		}
	}
	if len(fds) > 0 {
		if err := d.runtime.Keep(fds); err != nil {
			d.log.Warn("sockets not left for the next daemon: lookups and proxied connections are refused until it serves", "err", err)
		}
	}
	for _, s := range resolvers {
		s.Close()
	}
	for _, fd := range ports {
		unix.Close(fd)
	}
}

// takeKept takes from the reaper the sockets the daemon before left
// (keepSockets): the host ports' go to the port allocator, which holds
// the ports with them again (network.Controller.Start), the resolvers'
// to keptDNS (restoreResolvers).
func (d *Daemon) takeKept() {
	if d.runtime == nil {
		return
	}
	fds, err := d.runtime.Kept()
	if err != nil {
		d.log.Warn("take the sockets the daemon before left", "err", err)
	}
	d.keptDNS = make(map[string]*dns.Sockets, len(fds))
	ports := map[network.HostPort]int{}
	for key, f := range fds {
		hp, isPort := parsePortKey(key)
		switch {
		case isPort && len(f) == 1 && d.ports != nil:
			ports[hp] = f[0]
		case !strings.HasPrefix(key, portKeyPrefix) && len(f) == 2:
			d.keptDNS[key] = &dns.Sockets{UDP: f[0], TCP: f[1]}
		default:
			for _, fd := range f {
				unix.Close(fd)
			}
		}
	}
	if len(ports) > 0 {
		d.ports.Adopt(ports)
	}
}

// dropAdoptedPorts closes the kept sockets of ports no endpoint publishes
// any longer (their containers went while no daemon ran).
func (d *Daemon) dropAdoptedPorts() int {
	if d.ports == nil {
		return 0
	}
	return d.ports.DropAdopted()
}
