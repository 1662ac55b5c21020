package portalloc

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/network"
	"golang.org/x/sys/unix"
)

// Docker 28's words for a port it cannot publish, which users and tools
// match: its port allocator's for a port that another container publishes
// (libnetwork/portallocator), and its bridge driver's for a bind that
// fails (libnetwork/drivers/bridge/port_mapping_linux.go, bindTCPOrUDP).
// The network package puts the endpoint in front, and the daemon "failed
// to set up container networking", as moby does.

// bindFailure is a bind that failed: Hold words it once it knows whether
// a port that berth publishes was in the way.
type bindFailure struct {
	i    int    // the request's index in Hold's argument
	port uint16 // the port whose bind failed (0: an ephemeral one)
	err  error  // the bind's errno
	// inUse: every port of the request's range was in use.
	inUse bool
	// span and from are the range a search went through (the ephemeral
	// one for a request without a port) and where it started; a zero span
	// is the request's own range, searched from its start.
	span portSpan
	from uint16
}

func (f *bindFailure) Error() string { return fmt.Sprintf("bind port %d: %v", f.port, f.err) }
func (f *bindFailure) Unwrap() error { return f.err }

// mobyAttempts is moby's maxAllocateAttempts: the ports its OSAllocator
// tries for a range before it gives up.
const mobyAttempts = 10

// allPortsAllocated is the allocator's errAllPortsAllocated: every port of
// a range is published already.
func allPortsAllocated() error { return errdefs.Conflict("all ports are allocated") }

// alreadyAllocated is the allocator's alreadyAllocatedErr. ip is the
// address of the publication in the way, as moby names the address of its
// allocator map that has the port.
func alreadyAllocated(ip netip.Addr, port uint16) error {
	return errdefs.Conflict("Bind for %s:%d failed: port is already allocated", ip, port)
}

// bindFailed is bindTCPOrUDP's error for r, which failed to bind port: a
// port in use (by a host process) is a conflict, an address that is not
// the host's a bad request.
func bindFailed(r network.HostPortRequest, port uint16, err error) error {
	var msg error
	if r.Start == r.End {
		msg = fmt.Errorf("failed to bind host port for %s: %w", mappingString(r), err)
	} else {
		msg = fmt.Errorf("failed to bind host port %d for %s: %w", port, mappingString(r), err)
	}
	switch {
	case errors.Is(err, unix.EADDRINUSE):
		return errdefs.WithKind(errdefs.KindConflict, msg)
	case errors.Is(err, unix.EADDRNOTAVAIL):
		return errdefs.WithKind(errdefs.KindInvalid, msg)
	}
	return msg
}

// mappingString is libnetwork's types.PortBinding.String for r:
// "0.0.0.0:8080:172.17.0.2:80/tcp", "0.0.0.0:8000-8001:172.17.0.2:80/tcp".
func mappingString(r network.HostPortRequest) string {
	var b strings.Builder
	if ip := anyIfInvalid(r.HostIP); ip.Is6() {
		b.WriteString("[" + ip.String() + "]") // as moby brackets an IPv6 host address
	} else {
		b.WriteString(ip.String())
	}
	b.WriteByte(':')
	if r.Start != 0 {
		b.WriteString(strconv.Itoa(int(r.Start)))
		if r.End != 0 && r.End != r.Start {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(int(r.End)))
		}
	}
	b.WriteByte(':') // after an empty host port too: "0.0.0.0::172.17.0.3:443/tcp"
	if a := r.Container.Addr(); a.Is6() {
		b.WriteString("[" + a.String() + "]:")
	} else if a.IsValid() {
		b.WriteString(a.String() + ":")
	}
	b.WriteString(strconv.Itoa(int(r.Container.Port())))
	b.WriteByte('/')
	b.WriteString(r.Proto)
	return b.String()
}

// publishedSet indexes the ports published when a Hold failed: by
// protocol and port, the addresses they are published on.
type publishedSet map[protoPort][]netip.Addr

type protoPort struct {
	proto string
	port  uint16
}

func (s publishedSet) add(hp network.HostPort) {
	k := protoPort{hp.Proto, hp.Port}
	s[k] = append(s[k], anyIfInvalid(hp.HostIP))
}

// conflict returns the address of a publication on ip:port itself.
// moby's allocator keeps its ports by address alone: a port published on
// every address does not make it "allocated" on one (nor the reverse), and
// the bind that then fails says so in its own words (bindFailed).
func (s publishedSet) conflict(proto string, ip netip.Addr, port uint16) (netip.Addr, bool) {
	if slices.Contains(s[protoPort{proto, port}], ip) {
		return ip, true
	}
	return netip.Addr{}, false
}

// published is what stood in the way of request i: the ports held before
// this Hold, those it bound and the exact ports asked for before i, which
// moby's allocator would have granted first.
func (a *Allocator) published(reqs []network.HostPortRequest, out []network.HostPort, i int) publishedSet {
	s := publishedSet{}
	for hp := range a.held {
		s.add(hp)
	}
	for j, hp := range out {
		if j != i && hp.Port != 0 {
			s.add(hp)
		}
	}
	for _, r := range reqs[:i] {
		if r.Start != 0 && r.Start == r.End {
			s.add(network.HostPort{Proto: r.Proto, HostIP: r.HostIP, Port: r.Start})
		}
	}
	return s
}

// word gives a failed Hold's error Docker's words; errors other than a
// failed bind pass as they are. moby asks its allocator before it binds,
// so a port that berth publishes already is "allocated" whatever the bind
// said.
func (a *Allocator) word(err error, reqs []network.HostPortRequest, out []network.HostPort) error {
	var f *bindFailure
	if !errors.As(err, &f) {
		return err
	}
	r := reqs[f.i]
	ip := anyIfInvalid(r.HostIP)
	pub := a.published(reqs, out, f.i)
	span, from := f.span, f.from
	if span.hi == 0 {
		span, from = portSpan{lo: r.Start, hi: r.End}, r.Start
	}
	if r.Start == r.End && (r.Start != 0 || span.hi == 0) {
		if owner, ok := pub.conflict(r.Proto, ip, r.Start); ok && r.Start != 0 {
			return alreadyAllocated(owner, r.Start)
		}
		return bindFailed(r, f.port, f.err)
	}
	// A range (or the ephemeral one): the allocator gives the ports that
	// no container publishes, in the order of its search, and moby tries
	// to bind them; when it has none, every port is "allocated". A bind
	// that failed otherwise than for a port in use failed on the first
	// port the allocator gave; when every one was in use, moby names the
	// last of its maxAllocateAttempts (10) tries, its search wrapping
	// round the range's free ports (berth tries them all, once).
	var unpublished []uint16
	for p := range span.from(from) {
		if _, ok := pub.conflict(r.Proto, ip, p); !ok && !span.reserved[p] {
			unpublished = append(unpublished, p)
		}
	}
	switch {
	case len(unpublished) == 0:
		return allPortsAllocated()
	case f.inUse:
		return bindFailed(r, unpublished[(mobyAttempts-1)%len(unpublished)], unix.EADDRINUSE)
	}
	return bindFailed(r, unpublished[0], f.err)
}
