package daemon

import (
	"cmp"
	"net/netip"
	"strconv"
	"strings"

	"github.com/berth-net/berth/internal/dns"
	"github.com/berth-net/berth/internal/network"
	"github.com/berth-net/berth/internal/portproxy"
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
//     was refused. (Docker's docker-proxy processes get SIGTERM when
//     dockerd exits, their Pdeathsig, live-restore or not: their ports
//     refuse until dockerd starts them again.)
//   - the connections that proxy carries, by port and number
//     ("conn:3:cC:port:tcp/[::]:8080", see connKey), each its client's
//     socket, the container's, and the pipes of bytes read from one and
//     not yet written to the other: the next daemon carries them on, no
//     byte lost, where a restart used to cut them.
//   - its UDP flows, by port, number and client ("flow:3
//     [2001:db8::7]:41000 2001:db8::1 port:udp/[::]:5353", see flowKey),
//     each the flow's socket connected to the container: the container's
//     replies wait in it, and the next daemon carries the flow on from
//     the same source port, so the container's session with that client
//     (QUIC, WireGuard, a game) goes on where a restart used to start a
//     new one.
//
// A daemon killed keeps nothing, and its successor binds anew. The cost: a
// daemon stopped for good leaves those sockets open, lookups and proxied
// connections waiting rather than refused, until the reaper lets them go,
// 10 s after the stop.

// portKeyPrefix starts the keys of host ports' sockets, connKeyPrefix
// those of proxied connections, flowKeyPrefix those of proxied UDP
// flows; the resolvers' keys are sandbox IDs (hex).
const (
	portKeyPrefix = "port:"
	connKeyPrefix = "conn:"
	flowKeyPrefix = "flow:"
)

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

// connKey is the key of the i-th connection kept of port hp. Its flags:
// "c" the client's stream had ended, "b" the container's, "C" bytes for
// the client wait in a pipe, "B" bytes for the container; "-" none. Its
// descriptors are k.Fds().
func connKey(hp network.HostPort, i int, k portproxy.KeptConn) string {
	flags := ""
	for _, f := range []struct {
		on bool
		c  string
	}{{k.ClientDone, "c"}, {k.BackendDone, "b"}, {k.ToClient[0] >= 0, "C"}, {k.ToBackend[0] >= 0, "B"}} {
		if f.on {
			flags += f.c
		}
	}
	return connKeyPrefix + strconv.Itoa(i) + ":" + cmp.Or(flags, "-") + ":" + portKey(hp)
}

// validConnFlags reports whether flags could come from connKey: "-", or
// each of "cbCB" at most once and in that order, and never a pipe of
// bytes for a stream that had ended (bytes to the client pend only while
// the container's stream goes on, and the other way round).
func validConnFlags(flags string) bool {
	if flags == "-" {
		return true
	}
	rest := flags
	for _, c := range "cbCB" {
		rest = strings.TrimPrefix(rest, string(c))
	}
	return flags != "" && rest == "" &&
		!(strings.Contains(flags, "b") && strings.Contains(flags, "C")) &&
		!(strings.Contains(flags, "c") && strings.Contains(flags, "B"))
}

// parseConnKey reads a key connKey made, with the connection's
// descriptors.
func parseConnKey(key string, fds []int) (network.HostPort, portproxy.KeptConn, bool) {
	no := func() (network.HostPort, portproxy.KeptConn, bool) {
		return network.HostPort{}, portproxy.KeptConn{}, false
	}
	f := strings.SplitN(key, ":", 4)
	if len(f) != 4 || f[0]+":" != connKeyPrefix || !validConnFlags(f[2]) {
		return no()
	}
	if i, err := strconv.Atoi(f[1]); err != nil || i < 0 || strconv.Itoa(i) != f[1] {
		return no()
	}
	hp, ok := parsePortKey(f[3])
	if !ok {
		return no()
	}
	k := portproxy.KeptConn{ClientDone: strings.Contains(f[2], "c"), BackendDone: strings.Contains(f[2], "b"),
		ToClient: portproxy.NoPipe, ToBackend: portproxy.NoPipe}
	want := 2
	toClient, toBackend := strings.Contains(f[2], "C"), strings.Contains(f[2], "B")
	for _, on := range []bool{toClient, toBackend} {
		if on {
			want += 2
		}
	}
	if len(fds) != want {
		return no()
	}
	k.Client, k.Backend = fds[0], fds[1]
	rest := fds[2:]
	if toClient {
		k.ToClient, rest = [2]int{rest[0], rest[1]}, rest[2:]
	}
	if toBackend {
		k.ToBackend = [2]int{rest[0], rest[1]}
	}
	return hp, k, true
}

// flowKey is the key of the i-th UDP flow kept of port hp: the number,
// the client's address and port, the address it sent to ("-" if
// unknown), then hp's key, apart by spaces (an IPv6 zone, an interface
// name, has none). Its one descriptor is f.Backend.
func flowKey(hp network.HostPort, i int, f portproxy.KeptFlow) string {
	to := "-"
	if f.To.IsValid() {
		to = f.To.String()
	}
	return flowKeyPrefix + strconv.Itoa(i) + " " + f.Client.String() + " " + to + " " + portKey(hp)
}

// parseFlowKey reads a key flowKey made, with the flow's descriptors.
func parseFlowKey(key string, fds []int) (network.HostPort, portproxy.KeptFlow, bool) {
	no := func() (network.HostPort, portproxy.KeptFlow, bool) {
		return network.HostPort{}, portproxy.KeptFlow{}, false
	}
	rest, ok := strings.CutPrefix(key, flowKeyPrefix)
	f := strings.Split(rest, " ")
	if !ok || len(f) != 4 || len(fds) != 1 {
		return no()
	}
	if i, err := strconv.Atoi(f[0]); err != nil || i < 0 || strconv.Itoa(i) != f[0] {
		return no()
	}
	client, err := netip.ParseAddrPort(f[1])
	if err != nil || client.Port() == 0 {
		return no()
	}
	var to netip.Addr
	if f[2] != "-" {
		if to, err = netip.ParseAddr(f[2]); err != nil {
			return no()
		}
	}
	hp, ok := parsePortKey(f[3])
	if !ok || hp.Proto != "udp" {
		return no()
	}
	return hp, portproxy.KeptFlow{Client: client, To: to, Backend: fds[0]}, true
}

// keepSockets, as the daemon stops, leaves its resolvers' and published
// ports' sockets and its proxied connections and flows with the reaper (see
// above), with those it took from the daemon before and has not served
// (a start that failed half way).
func (d *Daemon) keepSockets() {
	if d.runtime == nil {
		return
	}
	fds := map[string][]int{}
	var resolvers map[string]dns.Sockets
	if d.dns != nil {
		resolvers = d.dns.Detach()
	}
	for id, s := range d.keptDNS { // not served yet
		if resolvers == nil {
			resolvers = map[string]dns.Sockets{}
		}
		if _, ok := resolvers[id]; ok {
			s.Close()
			continue
		}
		resolvers[id] = *s
	}
	d.keptDNS = nil
	for id, s := range resolvers {
		fds[id] = []int{s.UDP, s.TCP}
	}
	var ports map[network.HostPort]int
	var conns map[network.HostPort]portproxy.Kept
	if d.ports != nil {
		ports, conns = d.ports.Detach()
		for hp, fd := range ports {
			fds[portKey(hp)] = []int{fd}
		}
		for hp, k := range conns {
			for i, c := range k.Conns {
				fds[connKey(hp, i, c)] = c.Fds()
			}
			for i, f := range k.Flows {
				fds[flowKey(hp, i, f)] = []int{f.Backend}
			}
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
	for _, k := range conns {
		k.Close()
	}
}

// takeKept takes from the reaper the sockets the daemon before left
// (keepSockets): the host ports' and the proxied connections' go to the
// port allocator, which holds the ports with them again and carries the
// connections on (network.Controller.Start), the resolvers' to keptDNS
// (restoreResolvers).
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
	conns := map[network.HostPort]portproxy.Kept{}
	for key, f := range fds {
		hp, isPort := parsePortKey(key)
		chp, conn, isConn := parseConnKey(key, f)
		fhp, flow, isFlow := parseFlowKey(key, f)
		switch {
		case isPort && len(f) == 1 && d.ports != nil:
			ports[hp] = f[0]
		case isConn && d.ports != nil:
			k := conns[chp]
			k.Conns = append(k.Conns, conn)
			conns[chp] = k
		case isFlow && d.ports != nil:
			k := conns[fhp]
			k.Flows = append(k.Flows, flow)
			conns[fhp] = k
		case !strings.HasPrefix(key, portKeyPrefix) && !strings.HasPrefix(key, connKeyPrefix) &&
			!strings.HasPrefix(key, flowKeyPrefix) && len(f) == 2:
			d.keptDNS[key] = &dns.Sockets{UDP: f[0], TCP: f[1]}
		default:
			for _, fd := range f {
				unix.Close(fd)
			}
		}
	}
	if len(ports) > 0 || len(conns) > 0 {
		d.ports.Adopt(ports, conns)
	}
}

// dropAdoptedPorts closes the kept sockets of ports no endpoint publishes
// any longer (their containers went while no daemon ran), and the
// connections of ports no longer proxied.
func (d *Daemon) dropAdoptedPorts() int {
	if d.ports == nil {
		return 0
	}
	return d.ports.DropAdopted()
}
