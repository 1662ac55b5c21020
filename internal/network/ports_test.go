package network

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/firewall"
	"github.com/berth-net/berth/internal/store"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// fakeHolder holds host ports in a map, with the overlap rules of bind(2)
// within a family (IPv6 sockets are IPV6_V6ONLY): a port on 0.0.0.0 (::)
// collides with the same port on any one IPv4 (IPv6) address. It records
// the ports it is asked to forward, which must have been held Proxied (a
// real holder's socket for any other does not listen).
type fakeHolder struct {
	mu        sync.Mutex
	held      map[HostPort]bool
	proxied   map[HostPort]bool // held with Proxied
	busy      map[HostPort]bool // "host processes" using ports
	next      uint16            // the next ephemeral port
	forwarded map[HostPort]netip.AddrPort
	// targets are the container sides the requests named (for errors).
	targets map[HostPort]netip.AddrPort
	// last is the port each range gave last: a range's search starts
	// after it and wraps, as the real holder's (moby's allocator's).
	last map[HostPortRequest]uint16
}

func newFakeHolder() *fakeHolder {
	return &fakeHolder{held: map[HostPort]bool{}, proxied: map[HostPort]bool{}, busy: map[HostPort]bool{}, next: 32768,
		forwarded: map[HostPort]netip.AddrPort{}, targets: map[HostPort]netip.AddrPort{}, last: map[HostPortRequest]uint16{}}
}

func (h *fakeHolder) taken(p HostPort) bool {
	any := anyIP
	if p.HostIP.Is6() {
		any = netip.IPv6Unspecified()
	}
	for _, m := range []map[HostPort]bool{h.held, h.busy} {
		for _, ip := range []netip.Addr{p.HostIP, any} {
			if m[HostPort{Proto: p.Proto, HostIP: ip, Port: p.Port}] {
				return true
			}
		}
		if p.HostIP.IsUnspecified() && len(m) < 100 { // small maps: look for one address
			for o := range m {
				if o.Proto == p.Proto && o.Port == p.Port && o.HostIP.Is4() == p.HostIP.Is4() {
					return true
				}
			}
		}
	}
	return false
}

func (h *fakeHolder) Forward(hp HostPort, target netip.AddrPort) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.held[hp] {
		return fmt.Errorf("forward %s: not held", hp)
	}
	if !h.proxied[hp] {
		return fmt.Errorf("forward %s: not held for the proxy", hp)
	}
	h.forwarded[hp] = target
	return nil
}

func (h *fakeHolder) Hold(reqs []HostPortRequest) ([]HostPort, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []HostPort
	undo := func() {
		for _, p := range out {
			delete(h.held, p)
			delete(h.proxied, p)
		}
	}
	for _, r := range reqs {
		start, end := r.Start, r.End
		if start == 0 {
			start, end = h.next, h.next
			h.next++
		}
		var got *HostPort
		key := HostPortRequest{Proto: r.Proto, HostIP: r.HostIP, Start: start, End: end}
		port := int(start)
		if last, ok := h.last[key]; ok && last < end {
			port = int(last) + 1
		}
		for range int(end-start) + 1 {
			p := HostPort{Proto: r.Proto, HostIP: r.HostIP, Port: uint16(port)}
			if !h.taken(p) {
				got = &p
				h.last[key] = p.Port
				break
			}
			if port++; port > int(end) {
				port = int(start)
			}
		}
		if got == nil {
			undo()
			return nil, errdefs.Conflict("Bind for %s:%d failed: port is already allocated", r.HostIP, start)
		}
		h.held[*got] = true
		h.targets[*got] = r.Container
		if r.Proxied {
			h.proxied[*got] = true
		}
		out = append(out, *got)
	}
	return out, nil
}

func (h *fakeHolder) Release(ps []HostPort) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range ps {
		delete(h.held, p)
		delete(h.proxied, p)
		delete(h.forwarded, p)
	}
	return nil
}

func (h *fakeHolder) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.held)
}

// portRig is a rig whose controller holds ports through a fakeHolder.
type portRig struct {
	*rig
	ports *fakeHolder
	ipv6  bool // the controller's IPv6Ports
	// noProxy is the controller's NoUserlandProxy.
	noProxy bool
	direct  bool // the controller's AllowDirectRouting
}

func newPortRig(t *testing.T) *portRig {
	t.Helper()
	return newPortRigWith(t, false, false)
}

// newPortRigWith is newPortRig with the controller's IPv6Ports and
// NoUserlandProxy set as given.
func newPortRigWith(t *testing.T, ipv6, noProxy bool) *portRig {
	t.Helper()
	r := &portRig{rig: newRig(t), ports: newFakeHolder(), ipv6: ipv6, noProxy: noProxy}
	r.restartWith(t, r.ports)
	return r
}

// putEndpoints records eps as they are, as a daemon killed after writing
// them left them.
func putEndpoints(t *testing.T, r *rig, eps ...*Endpoint) {
	t.Helper()
	if err := r.st.Update(func(tx store.Tx) error {
		for _, ep := range eps {
			if err := tx.Put(store.BucketEndpoints, ep.ID, ep); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// restartWith starts a new controller over the same state, as a daemon
// restart does; a new holder models the sockets that died with the daemon.
func (r *portRig) restartWith(t *testing.T, h *fakeHolder) {
	t.Helper()
	r.ports = h
	r.c = New(Config{
		Store: r.st, Driver: r.drv, Sandboxes: r.sbs, Firewall: r.fw, Ports: h, IPv6Ports: r.ipv6, NoUserlandProxy: r.noProxy,
		AllowDirectRouting: r.direct,
		Nameservers:        []netip.Addr{netip.MustParseAddr("10.255.255.53")},
		NewID:              r.ids,
		Now:                func() time.Time { return time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC) },
	})
	if err := r.c.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
}

var (
	anyIP   = netip.IPv4Unspecified()
	localIP = netip.MustParseAddr("127.0.0.1")
	cmpAddr = cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{}, netip.AddrPort{})
)

func TestJoinPublishesPorts(t *testing.T) {
	r := newPortRig(t)
	ctx := context.Background()
	sb := r.sandbox(t, "c1")
	ep := r.join(t, sb, "bridge", JoinRequest{ContainerID: "c1", Name: "web", Ports: []PortRequest{
		{Proto: "tcp", Port: 80, HostPortStart: 8080, HostPortEnd: 8080},
		{Proto: "udp", Port: 53, HostIP: localIP, HostPortStart: 5353, HostPortEnd: 5353},
		{Proto: "tcp", Port: 443}, // ephemeral
		{Proto: "tcp", Port: 81, HostPortStart: 8080, HostPortEnd: 8090}, // first free of a range
	}})
	want := []PortMapping{
		{Proto: "tcp", HostIP: anyIP, HostPort: 8080, Port: 80},
		{Proto: "udp", HostIP: localIP, HostPort: 5353, Port: 53},
		{Proto: "tcp", HostIP: anyIP, HostPort: 32768, Port: 443},
		{Proto: "tcp", HostIP: anyIP, HostPort: 8081, Port: 81},
	}
	if diff := cmp.Diff(want, ep.Ports, cmpAddr); diff != "" {
		t.Errorf("endpoint ports (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, r.c.PortsOf(sb.ID), cmpAddr); diff != "" {
		t.Errorf("PortsOf (-want +got):\n%s", diff)
	}
	ctr := netip.MustParseAddr("172.17.0.2")
	wantFW := []firewall.PortMapping{
		{Proto: firewall.UDP, HostIP: localIP, HostPort: 5353, Addr: ctr, Port: 53},
		{Proto: firewall.TCP, HostPort: 8080, Addr: ctr, Port: 80},
		{Proto: firewall.TCP, HostPort: 8081, Addr: ctr, Port: 81},
		{Proto: firewall.TCP, HostPort: 32768, Addr: ctr, Port: 443},
	}
	if diff := cmp.Diff(wantFW, r.fw.portList(), cmpAddr); diff != "" {
		t.Errorf("firewall ports (-want +got):\n%s", diff)
	}
	if err := r.c.Leave(ctx, sb.ID, "bridge"); err != nil {
		t.Fatal(err)
	}
	if n := len(r.fw.portList()); n != 0 {
		t.Errorf("%d ports left in the firewall after Leave", n)
	}
	if n := r.ports.count(); n != 0 {
		t.Errorf("%d host ports still held after Leave", n)
	}
}

func TestHostBindingOption(t *testing.T) {
	r := newPortRig(t)
	ctx := context.Background()
	if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "local", Options: map[string]string{OptHostBindingIPv4: "127.0.0.1"}}); err != nil {
		t.Fatal(err)
	}
	sb := r.sandbox(t, "c1")
	ep := r.join(t, sb, "local", JoinRequest{ContainerID: "c1", Name: "web", Ports: []PortRequest{
		{Proto: "tcp", Port: 80, HostPortStart: 8080, HostPortEnd: 8080},
		{Proto: "tcp", Port: 81, HostIP: anyIP, HostPortStart: 8081, HostPortEnd: 8081}, // explicit wins
	}})
	want := []PortMapping{
		{Proto: "tcp", HostIP: localIP, HostPort: 8080, Port: 80},
		{Proto: "tcp", HostIP: anyIP, HostPort: 8081, Port: 81},
	}
	if diff := cmp.Diff(want, ep.Ports, cmpAddr); diff != "" {
		t.Errorf("ports (-want +got):\n%s", diff)
	}
}

// TestPortConflictsLeaveNothing: a refused join holds no port, keeps no
// address and no endpoint, and changes no firewall element.
func TestPortConflictsLeaveNothing(t *testing.T) {
	web := []PortRequest{{Proto: "tcp", Port: 80, HostPortStart: 8080, HostPortEnd: 8080}}
	cases := []struct {
		name  string
		setup func(*portRig)
		req   []PortRequest
	}{
		{"same port twice", nil, web},
		{"one address after every address", nil, []PortRequest{{Proto: "tcp", Port: 80, HostIP: localIP, HostPortStart: 8080, HostPortEnd: 8080}}},
		{"host process on the port", func(r *portRig) {
			r.ports.busy[HostPort{Proto: "tcp", HostIP: anyIP, Port: 9090}] = true
		}, []PortRequest{{Proto: "tcp", Port: 80, HostPortStart: 9090, HostPortEnd: 9090}}},
		{"range all taken", nil, []PortRequest{{Proto: "tcp", Port: 80, HostPortStart: 8080, HostPortEnd: 8080}, {Proto: "udp", Port: 1, HostPortStart: 1, HostPortEnd: 1}}},
		{"firewall refuses", func(r *portRig) {
			// An element the holder does not know about (a stale one).
			_ = r.fw.AddPorts(context.Background(), []firewall.PortMapping{{Proto: firewall.UDP, HostPort: 7000, Addr: netip.MustParseAddr("172.17.0.99"), Port: 1}})
		}, []PortRequest{{Proto: "udp", Port: 53, HostPortStart: 7000, HostPortEnd: 7000}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newPortRig(t)
			first := r.join(t, r.sandbox(t, "c1"), "bridge", JoinRequest{ContainerID: "c1", Name: "one", Ports: web})
			if tc.setup != nil {
				tc.setup(r)
			}
			held, fwPorts := r.ports.count(), r.fw.portList()
			sb := r.sandbox(t, "c2")
			_, err := r.c.Join(context.Background(), sb.ID, "bridge", JoinRequest{ContainerID: "c2", Name: "two", Ports: tc.req})
			if err == nil || !errdefs.Is(err, errdefs.KindUnknown) {
				t.Fatalf("Join = %v, want the daemon's failure", err)
			}
			if got := r.ports.count(); got != held {
				t.Errorf("held ports %d, want %d", got, held)
			}
			if diff := cmp.Diff(fwPorts, r.fw.portList(), cmpAddr); diff != "" {
				t.Errorf("firewall ports changed (-before +after):\n%s", diff)
			}
			if got := r.c.allocated(first.NetworkID); len(got) != 1 {
				t.Errorf("allocated addresses %v, want only the first container's", got)
			}
			if got := r.drv.vethNames(); len(got) != 1 {
				t.Errorf("veths %v, want only the first container's", got)
			}
		})
	}
}

func TestJoinBadPortRequests(t *testing.T) {
	cases := map[string]PortRequest{
		"sctp":           {Proto: "sctp", Port: 80},
		"port 0":         {Proto: "tcp", Port: 0},
		"zoned host IP":  {Proto: "tcp", Port: 80, HostIP: netip.MustParseAddr("fe80::1%eth0")},
		"reversed range": {Proto: "tcp", Port: 80, HostPortStart: 9000, HostPortEnd: 8000},
		"half a range":   {Proto: "tcp", Port: 80, HostPortEnd: 8000},
	}
	r := newPortRig(t)
	for name, req := range cases {
		t.Run(name, func(t *testing.T) {
			sb := r.sandbox(t, "c-"+name)
			_, err := r.c.Join(context.Background(), sb.ID, "bridge", JoinRequest{ContainerID: "c", Name: "x", Ports: []PortRequest{req}})
			if !errdefs.Is(err, errdefs.KindInvalid) {
				t.Errorf("Join = %v, want invalid", err)
			}
		})
	}
	if n := r.ports.count(); n != 0 {
		t.Errorf("%d ports held after bad requests", n)
	}
}

func TestPortsIgnoredOnHostNetwork(t *testing.T) {
	r := newPortRig(t)
	sb, err := r.c.CreateSandbox(context.Background(), "c1", true)
	if err != nil {
		t.Fatal(err)
	}
	ep := r.join(t, sb, "host", JoinRequest{ContainerID: "c1", Name: "h", Ports: []PortRequest{{Proto: "tcp", Port: 80, HostPortStart: 80, HostPortEnd: 80}}})
	if len(ep.Ports) != 0 || r.ports.count() != 0 || len(r.fw.portList()) != 0 {
		t.Errorf("host network published %v", ep.Ports)
	}
}

// TestRestartRepublishesPorts: after a restart (a crash), the firewall is
// rebuilt with the recorded ports and the host ports are held again; the
// container's removal afterwards withdraws them.
func TestRestartRepublishesPorts(t *testing.T) {
	r := newPortRig(t)
	sb := r.sandbox(t, "c1")
	r.join(t, sb, "bridge", JoinRequest{ContainerID: "c1", Name: "web", Ports: []PortRequest{{Proto: "tcp", Port: 80, HostPortStart: 8080, HostPortEnd: 8080}}})
	before := r.fw.portList()
	r.fw.setPortsLocked(nil) // the kernel table is gone too
	r.restartWith(t, newFakeHolder())
	if diff := cmp.Diff(before, r.fw.portList(), cmpAddr); diff != "" {
		t.Errorf("firewall ports after restart (-before +after):\n%s", diff)
	}
	if n := r.ports.count(); n != 1 {
		t.Errorf("%d host ports held after restart, want 1", n)
	}
	if err := r.c.DeleteSandbox(context.Background(), sb.ID); err != nil {
		t.Fatal(err)
	}
	if n, m := len(r.fw.portList()), r.ports.count(); n != 0 || m != 0 {
		t.Errorf("after DeleteSandbox: %d firewall ports, %d held", n, m)
	}
}

// TestManyPorts publishes 10,000 ports on one endpoint.
func TestManyPorts(t *testing.T) {
	r := newPortRig(t)
	var reqs []PortRequest
	for i := range 10000 {
		p := uint16(20000 + i)
		reqs = append(reqs, PortRequest{Proto: "tcp", Port: p, HostPortStart: p, HostPortEnd: p})
	}
	ep := r.join(t, r.sandbox(t, "c1"), "bridge", JoinRequest{ContainerID: "c1", Name: "many", Ports: reqs})
	if len(ep.Ports) != 10000 || len(r.fw.portList()) != 10000 {
		t.Errorf("published %d, firewall %d; want 10000", len(ep.Ports), len(r.fw.portList()))
	}
	if got := fmt.Sprint(ep.Ports[9999]); got != "0.0.0.0:29999->29999/tcp" {
		t.Errorf("last mapping %s", got)
	}
}

// TestPortsOnGatewayEndpoint: a sandbox's ports are published by its
// gateway endpoint only, as libnetwork's sbJoin publishes them: never on
// an internal network, on the first network that is not internal to join
// (also later, by a connect, and after a restart), and again on the next
// one when that endpoint left.
func TestPortsOnGatewayEndpoint(t *testing.T) {
	r := newPortRig(t)
	ctx := context.Background()
	for _, req := range []CreateRequest{{Name: "inner", Internal: true}, {Name: "web"}} {
		if _, err := r.c.CreateNetwork(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	web := []PortRequest{{Proto: "tcp", Port: 80, HostPortStart: 8200, HostPortEnd: 8200}}
	published := func(sb *Sandbox, want []PortMapping) {
		t.Helper()
		if diff := cmp.Diff(want, r.c.PortsOf(sb.ID), cmpAddr); diff != "" {
			t.Errorf("PortsOf (-want +got):\n%s", diff)
		}
		if n, m := r.ports.count(), len(r.fw.portList()); n != len(want) || m != len(want) {
			t.Errorf("%d host ports held, %d in the firewall; want %d", n, m, len(want))
		}
	}
	mapped := []PortMapping{{Proto: "tcp", HostIP: anyIP, HostPort: 8200, Port: 80}}

	sb := r.sandbox(t, "c1")
	if ep := r.join(t, sb, "inner", JoinRequest{ContainerID: "c1", Name: "i1", Ports: web}); len(ep.Ports) != 0 {
		t.Errorf("internal endpoint publishes %v", ep.Ports)
	}
	published(sb, nil)
	r.restartWith(t, newFakeHolder())
	gw := r.join(t, sb, "bridge", JoinRequest{ContainerID: "c1", Name: "i1"})
	if diff := cmp.Diff(mapped, gw.Ports, cmpAddr); diff != "" {
		t.Errorf("gateway endpoint's ports (-want +got):\n%s", diff)
	}
	published(sb, mapped)
	if ep := r.join(t, sb, "web", JoinRequest{ContainerID: "c1", Name: "i1"}); len(ep.Ports) != 0 {
		t.Errorf("a second gateway candidate publishes %v", ep.Ports)
	}
	published(sb, mapped)
	// The gateway leaves: the ports move to the endpoint left on a
	// network that publishes, as libnetwork's sbLeave moves them.
	if err := r.c.Leave(ctx, sb.ID, "bridge"); err != nil {
		t.Fatal(err)
	}
	published(sb, mapped)
	ctr := r.c.Attachments(sb.ID)
	for _, a := range ctr {
		if a.Network.Name == "web" {
			if diff := cmp.Diff(mapped, a.Endpoint.Ports, cmpAddr); diff != "" {
				t.Errorf("web endpoint's ports after the gateway left (-want +got):\n%s", diff)
			}
			if fw := r.fw.portList(); len(fw) != 1 || fw[0].Addr != a.Endpoint.Address.Addr() {
				t.Errorf("firewall after the move: %+v, want the port to web's address %s", fw, a.Endpoint.Address.Addr())
			}
			// And the default route, which left with bridge's endpoint.
			want := a.Endpoint.IfName + " via " + a.Endpoint.Gateway.String()
			if !slices.Contains(r.drv.gateways, want) {
				t.Errorf("SetGateway calls %q, want %q", r.drv.gateways, want)
			}
		}
	}
	// A restart publishes them where they moved.
	r.restartWith(t, newFakeHolder())
	published(sb, mapped)
	if err := r.c.Leave(ctx, sb.ID, "web"); err != nil {
		t.Fatal(err)
	}
	published(sb, nil)
	r.join(t, sb, "web", JoinRequest{ContainerID: "c1", Name: "i1"})
	published(sb, mapped)

	// Ports given to a gateway stay there when an internal network joins.
	sb2 := r.sandbox(t, "c2")
	other := []PortRequest{{Proto: "udp", Port: 53, HostPortStart: 5353, HostPortEnd: 5353}}
	r.join(t, sb2, "bridge", JoinRequest{ContainerID: "c2", Name: "two", Ports: other})
	if ep := r.join(t, sb2, "inner", JoinRequest{ContainerID: "c2", Name: "two"}); len(ep.Ports) != 0 {
		t.Errorf("internal endpoint publishes %v", ep.Ports)
	}
	if diff := cmp.Diff([]PortMapping{{Proto: "udp", HostIP: anyIP, HostPort: 5353, Port: 53}}, r.c.PortsOf(sb2.ID), cmpAddr); diff != "" {
		t.Errorf("PortsOf c2 (-want +got):\n%s", diff)
	}
}

// TestPortErrorNamesEndpoint: a refused port comes with libnetwork's
// words for the endpoint, as the daemon's failure (moby's 500, whatever
// the allocator's kind).
func TestPortErrorNamesEndpoint(t *testing.T) {
	r := newPortRig(t)
	web := []PortRequest{{Proto: "tcp", Port: 80, HostPortStart: 8080, HostPortEnd: 8080}}
	r.join(t, r.sandbox(t, "c1"), "bridge", JoinRequest{ContainerID: "c1", Name: "one", Ports: web})
	sb := r.sandbox(t, "c2")
	_, err := r.c.Join(context.Background(), sb.ID, "bridge", JoinRequest{ContainerID: "c2", Name: "two", Ports: web})
	if err == nil || !errdefs.Is(err, errdefs.KindUnknown) {
		t.Fatalf("Join = %v (kind %v), want the daemon's failure, not the allocator's conflict", err, errdefs.KindOf(err))
	}
	re := regexp.MustCompile(`^driver failed programming external connectivity on endpoint two \([0-9a-f]{64}\): Bind for 0.0.0.0:8080 failed: port is already allocated$`)
	if !re.MatchString(err.Error()) {
		t.Errorf("error %q, want Docker's words", err)
	}
}

// TestIPv6Twins: with IPv6Ports, a port asked for on every address is
// published on [::] too, on the same host port (an ephemeral one's too),
// and forwarded, not put in the firewall; one on an IPv4 address, or on a
// network bound to one, is not. An IPv6 host address is published on its
// own. A twin that cannot be held leaves nothing held; a restart holds
// and forwards them again.
func TestIPv6Twins(t *testing.T) {
	r := newPortRigWith(t, true, false)
	ctx := context.Background()
	v6any, v6lo := netip.IPv6Unspecified(), netip.IPv6Loopback()
	sb := r.sandbox(t, "c1")
	ep := r.join(t, sb, "bridge", JoinRequest{ContainerID: "c1", Name: "web", Ports: []PortRequest{
		{Proto: "tcp", Port: 80, HostPortStart: 8080, HostPortEnd: 8080},
		{Proto: "udp", Port: 53}, // ephemeral
		{Proto: "tcp", Port: 81, HostIP: localIP, HostPortStart: 8081, HostPortEnd: 8081},
		{Proto: "tcp", Port: 82, HostIP: v6lo, HostPortStart: 8082, HostPortEnd: 8082},
	}})
	want := []PortMapping{
		{Proto: "tcp", HostIP: anyIP, HostPort: 8080, Port: 80},
		{Proto: "tcp", HostIP: v6any, HostPort: 8080, Port: 80},
		{Proto: "udp", HostIP: anyIP, HostPort: 32768, Port: 53},
		{Proto: "udp", HostIP: v6any, HostPort: 32768, Port: 53},
		{Proto: "tcp", HostIP: localIP, HostPort: 8081, Port: 81},
		{Proto: "tcp", HostIP: v6lo, HostPort: 8082, Port: 82},
	}
	if diff := cmp.Diff(want, ep.Ports, cmpAddr); diff != "" {
		t.Fatalf("ports (-want +got):\n%s", diff)
	}
	ctr := netip.MustParseAddr("172.17.0.2")
	wantFwd := map[HostPort]netip.AddrPort{
		{Proto: "tcp", HostIP: v6any, Port: 8080}:  netip.AddrPortFrom(ctr, 80),
		{Proto: "udp", HostIP: v6any, Port: 32768}: netip.AddrPortFrom(ctr, 53),
		{Proto: "tcp", HostIP: v6lo, Port: 8082}:   netip.AddrPortFrom(ctr, 82),
	}
	if diff := cmp.Diff(wantFwd, r.ports.forwarded, cmpAddr); diff != "" {
		t.Errorf("forwarded (-want +got):\n%s", diff)
	}
	if n := len(r.fw.portList()); n != 3 {
		t.Errorf("%d ports in the firewall, want the 3 IPv4 ones", n)
	}
	// A restart holds and forwards them again.
	r.restartWith(t, newFakeHolder())
	if diff := cmp.Diff(wantFwd, r.ports.forwarded, cmpAddr); diff != "" {
		t.Errorf("forwarded after a restart (-want +got):\n%s", diff)
	}
	if err := r.c.Leave(ctx, sb.ID, "bridge"); err != nil {
		t.Fatal(err)
	}
	if n := r.ports.count(); n != 0 || len(r.ports.forwarded) != 0 {
		t.Errorf("after Leave: %d ports held, %d forwarded", n, len(r.ports.forwarded))
	}
	// [::]:9300 taken: a range moves on to the next port free on both
	// sides, and so does an ephemeral port, as moby's bindHostPorts.
	r.ports.busy[HostPort{Proto: "tcp", HostIP: v6any, Port: 9300}] = true
	eph := r.ports.next
	r.ports.busy[HostPort{Proto: "udp", HostIP: v6any, Port: eph}] = true
	sb3 := r.sandbox(t, "c3")
	ep3 := r.join(t, sb3, "bridge", JoinRequest{ContainerID: "c3", Name: "w3", Ports: []PortRequest{
		{Proto: "tcp", Port: 80, HostPortStart: 9300, HostPortEnd: 9302},
		{Proto: "udp", Port: 53},
	}})
	want3 := []PortMapping{
		{Proto: "tcp", HostIP: anyIP, HostPort: 9301, Port: 80},
		{Proto: "tcp", HostIP: v6any, HostPort: 9301, Port: 80},
		{Proto: "udp", HostIP: anyIP, HostPort: eph + 1, Port: 53},
		{Proto: "udp", HostIP: v6any, HostPort: eph + 1, Port: 53},
	}
	if diff := cmp.Diff(want3, ep3.Ports, cmpAddr); diff != "" {
		t.Errorf("ports around taken IPv6 ones (-want +got):\n%s", diff)
	}
	if err := r.c.Leave(ctx, sb3.ID, "bridge"); err != nil {
		t.Fatal(err)
	}
	if n := r.ports.count(); n != 0 {
		t.Errorf("%d ports held after Leave (the ports let go on the way included)", n)
	}
	// A range whose search has moved on past its free ports wraps to
	// them when the port it gives has its [::] side taken (moby's retry
	// asks the allocator again): 9402 taken on [::], 9400 and 9401 free.
	for i, name := range []string{"c4", "c5"} {
		sb := r.sandbox(t, name)
		ep := r.join(t, sb, "bridge", JoinRequest{ContainerID: name, Name: "w" + name, Ports: []PortRequest{
			{Proto: "tcp", Port: 80, HostPortStart: 9400, HostPortEnd: 9402}}})
		if got := ep.Ports[0].HostPort; got != 9400+uint16(i) {
			t.Fatalf("%s got %d, want %d (in order)", name, got, 9400+i)
		}
		if err := r.c.Leave(ctx, sb.ID, "bridge"); err != nil {
			t.Fatal(err)
		}
	}
	r.ports.busy[HostPort{Proto: "tcp", HostIP: v6any, Port: 9402}] = true
	sb6 := r.sandbox(t, "c6")
	ep6 := r.join(t, sb6, "bridge", JoinRequest{ContainerID: "c6", Name: "w6", Ports: []PortRequest{
		{Proto: "tcp", Port: 80, HostPortStart: 9400, HostPortEnd: 9402}}})
	if got := ep6.Ports[0].HostPort; got != 9400 || ep6.Ports[1].HostPort != 9400 {
		t.Errorf("after 9402's [::] side was taken: %v, want 9400 on both sides", ep6.Ports)
	}
	if err := r.c.Leave(ctx, sb6.ID, "bridge"); err != nil {
		t.Fatal(err)
	}
	// [::]:9090 taken by a host process: the IPv4 port is let go too.
	r.ports.busy[HostPort{Proto: "tcp", HostIP: v6any, Port: 9090}] = true
	sb2 := r.sandbox(t, "c2")
	if _, err := r.c.Join(ctx, sb2.ID, "bridge", JoinRequest{ContainerID: "c2", Name: "w2", Ports: []PortRequest{
		{Proto: "tcp", Port: 80, HostPortStart: 9090, HostPortEnd: 9090}}}); err == nil {
		t.Fatal("join with its IPv6 twin's port taken succeeded")
	}
	if n := r.ports.count(); n != 0 {
		t.Errorf("%d ports held after a refused join", n)
	}
}

// TestHoldNamesTheTarget: a port's request names the container side its
// family goes to, which the holder's errors print (moby's
// "failed to bind host port for [::]:8585:[fd00:…::2]:80/tcp"): a
// dual-stack container's IPv6 address for its [::] side, the IPv4 one
// for its 0.0.0.0 side.
func TestHoldNamesTheTarget(t *testing.T) {
	r := newPortRigWith(t, true, false)
	ctx := context.Background()
	if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "dual", EnableIPv6: true, IPAM: []IPAMRequest{{Subnet: mustPrefix("fd00:65::/64")}}}); err != nil {
		t.Fatal(err)
	}
	ep := r.join(t, r.sandbox(t, "c1"), "dual", JoinRequest{ContainerID: "c1", Name: "web", Ports: []PortRequest{
		{Proto: "tcp", Port: 80, HostPortStart: 8585, HostPortEnd: 8585}}})
	r.ports.mu.Lock()
	defer r.ports.mu.Unlock()
	if got := r.ports.targets[HostPort{Proto: "tcp", HostIP: netip.IPv6Unspecified(), Port: 8585}]; got.Addr() != ep.Address6.Addr() {
		t.Errorf("[::]:8585 named %v, want %v", got, ep.Address6.Addr())
	}
	if got := r.ports.targets[HostPort{Proto: "tcp", HostIP: anyIP, Port: 8585}]; got.Addr() != ep.Address.Addr() {
		t.Errorf("0.0.0.0:8585 named %v, want %v", got, ep.Address.Addr())
	}
	// A range whose [::] side is taken: the IPv4 side is asked for again
	// (8601), still naming the IPv4 address.
	r.ports.busy[HostPort{Proto: "tcp", HostIP: netip.IPv6Unspecified(), Port: 8600}] = true
	r.ports.mu.Unlock()
	ep2 := r.join(t, r.sandbox(t, "c2"), "dual", JoinRequest{ContainerID: "c2", Name: "api", Ports: []PortRequest{
		{Proto: "tcp", Port: 80, HostPortStart: 8600, HostPortEnd: 8601}}})
	r.ports.mu.Lock()
	if got := r.ports.targets[HostPort{Proto: "tcp", HostIP: anyIP, Port: 8601}]; got.Addr() != ep2.Address.Addr() {
		t.Errorf("0.0.0.0:8601, asked for again, named %v, want %v", got, ep2.Address.Addr())
	}
	if got := r.ports.targets[HostPort{Proto: "tcp", HostIP: netip.IPv6Unspecified(), Port: 8601}]; got.Addr() != ep2.Address6.Addr() {
		t.Errorf("[::]:8601 named %v, want %v", got, ep2.Address6.Addr())
	}
}

// TestNoUserlandProxy: with the userland proxy off (dockerd's
// --userland-proxy=false), moby's sortAndNormPBs makes no IPv6 binding
// for a container with IPv4 only (no [::] twin, an IPv6 host address left
// out), a dual-stack container's IPv6 ports are DNATed as ever, and
// nothing is forwarded nor held for the proxy (its socket would listen),
// before and after a restart.
func TestNoUserlandProxy(t *testing.T) {
	r := newPortRigWith(t, true, true)
	ctx := context.Background()
	v6any, v6lo := netip.IPv6Unspecified(), netip.IPv6Loopback()
	for _, req := range []CreateRequest{
		{Name: "any6", Options: map[string]string{OptHostBindingIPv4: "::"}},
		{Name: "dual", EnableIPv6: true, IPAM: []IPAMRequest{{Subnet: mustPrefix("fd00:63::/64")}}},
	} {
		if _, err := r.c.CreateNetwork(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	ports := []PortRequest{
		{Proto: "tcp", Port: 80, HostPortStart: 8080, HostPortEnd: 8080},
		{Proto: "udp", Port: 53, HostPortStart: 5353, HostPortEnd: 5353},
		{Proto: "tcp", Port: 82, HostIP: v6lo, HostPortStart: 8082, HostPortEnd: 8082},
	}
	sb := r.sandbox(t, "c1")
	ep := r.join(t, sb, "bridge", JoinRequest{ContainerID: "c1", Name: "web", Ports: ports})
	want := []PortMapping{
		{Proto: "tcp", HostIP: anyIP, HostPort: 8080, Port: 80},
		{Proto: "udp", HostIP: anyIP, HostPort: 5353, Port: 53},
	}
	if diff := cmp.Diff(want, ep.Ports, cmpAddr); diff != "" {
		t.Errorf("IPv4-only container's ports (-want +got):\n%s", diff)
	}
	sb2 := r.sandbox(t, "c2")
	if ep2 := r.join(t, sb2, "any6", JoinRequest{ContainerID: "c2", Name: "v6default", Ports: ports[:1]}); len(ep2.Ports) != 0 {
		t.Errorf("an IPv4-only container on a network whose default host address is [::] published %v, want nothing", ep2.Ports)
	}
	sb3 := r.sandbox(t, "c3")
	ep3 := r.join(t, sb3, "dual", JoinRequest{ContainerID: "c3", Name: "db", Ports: []PortRequest{
		{Proto: "tcp", Port: 80, HostPortStart: 9080, HostPortEnd: 9080},
		{Proto: "tcp", Port: 82, HostIP: v6lo, HostPortStart: 9082, HostPortEnd: 9082},
	}})
	want3 := []PortMapping{
		{Proto: "tcp", HostIP: anyIP, HostPort: 9080, Port: 80},
		{Proto: "tcp", HostIP: v6any, HostPort: 9080, Port: 80},
		{Proto: "tcp", HostIP: v6lo, HostPort: 9082, Port: 82},
	}
	if diff := cmp.Diff(want3, ep3.Ports, cmpAddr); diff != "" {
		t.Errorf("dual-stack container's ports (-want +got):\n%s", diff)
	}
	dnat6 := false
	for _, m := range r.fw.portList() {
		dnat6 = dnat6 || (m.HostPort == 9080 && m.Addr == ep3.Address6.Addr())
	}
	if !dnat6 {
		t.Errorf("no DNAT of [::]:9080 to %s in %v", ep3.Address6.Addr(), r.fw.portList())
	}
	check := func(when string) {
		t.Helper()
		if len(r.ports.forwarded) != 0 || len(r.ports.proxied) != 0 {
			t.Errorf("%s: forwarded %v, held for the proxy %v; want none", when, r.ports.forwarded, r.ports.proxied)
		}
		if n := r.ports.count(); n != 5 {
			t.Errorf("%s: %d ports held, want 5", when, n)
		}
	}
	check("after the joins")
	r.restartWith(t, newFakeHolder())
	check("after a restart")

	// The same container on a daemon with the proxy: the [::] twin and
	// the [::1] port, forwarded to its IPv4 address.
	r.noProxy = false
	r.restartWith(t, newFakeHolder())
	sb4 := r.sandbox(t, "c4")
	ep4 := r.join(t, sb4, "bridge", JoinRequest{ContainerID: "c4", Name: "web4", Ports: []PortRequest{
		{Proto: "tcp", Port: 80, HostPortStart: 7080, HostPortEnd: 7080},
		{Proto: "tcp", Port: 82, HostIP: v6lo, HostPortStart: 7082, HostPortEnd: 7082},
	}})
	if len(ep4.Ports) != 3 || len(r.ports.forwarded) != 4 {
		t.Errorf("with the proxy: ports %v, forwarded %v; want 3 ports, and 4 forwarded (with db's two IPv6 ones)", ep4.Ports, r.ports.forwarded)
	}

	// Off again: web4's recorded [::] side and [::1] port stay held, for
	// no proxy (their sockets refuse), and nothing is forwarded.
	r.noProxy = true
	r.restartWith(t, newFakeHolder())
	if len(r.ports.forwarded) != 0 || len(r.ports.proxied) != 0 {
		t.Errorf("after the proxy was turned off: forwarded %v, held for the proxy %v; want none", r.ports.forwarded, r.ports.proxied)
	}
	if n := r.ports.count(); n != 8 {
		t.Errorf("after the proxy was turned off: %d ports held, want the 8 recorded", n)
	}
	for _, m := range r.fw.portList() {
		if m.Addr == ep4.Address.Addr() && !m.HostIP.Is4() && m.HostIP.IsValid() {
			t.Errorf("an IPv6 firewall mapping %v for the IPv4-only web4", m)
		}
	}
}

// TestGatewayIsChosenAsDockerChooses: a sandbox's default route and its
// ports go to the endpoint libnetwork's Endpoint.Less puts first — the
// highest gw-priority, then the network's name, never an internal
// network — and move when a join outranks the gateway or the gateway
// leaves. A move the new gateway cannot take fails the join and leaves
// route and ports where they were.
func TestGatewayIsChosenAsDockerChooses(t *testing.T) {
	r := newPortRig(t)
	ctx := context.Background()
	for _, req := range []CreateRequest{
		{Name: "zeta"}, {Name: "alpha"}, {Name: "beta"}, {Name: "aaa", Internal: true},
		{Name: "local"},
	} {
		if _, err := r.c.CreateNetwork(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	ports := []PortRequest{{Proto: "tcp", Port: 80, HostPortStart: 8300, HostPortEnd: 8300}}
	// gateway checks that the last join's route and the sandbox's ports
	// are on network want's endpoint.
	gateway := func(sb *Sandbox, want string) {
		t.Helper()
		for _, a := range r.c.Attachments(sb.ID) {
			if a.Network.Name != want {
				if len(a.Endpoint.Ports) > 0 {
					t.Errorf("%s's endpoint publishes %v; want them on %s", a.Network.Name, a.Endpoint.Ports, want)
				}
				continue
			}
			if len(a.Endpoint.Ports) != 1 || a.Endpoint.Ports[0].HostPort != 8300 {
				t.Errorf("gateway %s's ports = %v, want 8300", want, a.Endpoint.Ports)
			}
			if fw := r.fw.portList(); len(fw) != 1 || fw[0].Addr != a.Endpoint.Address.Addr() {
				t.Errorf("firewall's ports %+v, want one to %s's address %s", fw, want, a.Endpoint.Address.Addr())
			}
			return
		}
		t.Errorf("no endpoint on %s", want)
	}
	route := func(ep *Endpoint, want bool) {
		t.Helper()
		r.drv.mu.Lock()
		got := r.drv.veths[ep.HostIfName].Gateway.IsValid()
		r.drv.mu.Unlock()
		if got != want {
			t.Errorf("join of %s made with a default route: %v, want %v", ep.IfName, got, want)
		}
	}

	sb := r.sandbox(t, "c1")
	route(r.join(t, sb, "zeta", JoinRequest{ContainerID: "c1", Name: "one", Ports: ports}), true)
	gateway(sb, "zeta")
	route(r.join(t, sb, "aaa", JoinRequest{ContainerID: "c1", Name: "one"}), false) // internal: no gateway
	gateway(sb, "zeta")
	route(r.join(t, sb, "alpha", JoinRequest{ContainerID: "c1", Name: "one"}), true) // "alpha" < "zeta"
	gateway(sb, "alpha")
	route(r.join(t, sb, "beta", JoinRequest{ContainerID: "c1", Name: "one"}), false)
	gateway(sb, "alpha")
	// The gateway leaves: the next by name, beta, takes route and ports.
	r.drv.gateways = nil
	if err := r.c.Leave(ctx, sb.ID, "alpha"); err != nil {
		t.Fatal(err)
	}
	gateway(sb, "beta")
	if len(r.drv.gateways) != 1 || !strings.Contains(r.drv.gateways[0], " via 172.") {
		t.Errorf("SetGateway calls after the gateway left: %q, want one, to beta's", r.drv.gateways)
	}
	// Another endpoint leaves: nothing moves.
	r.drv.gateways = nil
	if err := r.c.Leave(ctx, sb.ID, "zeta"); err != nil {
		t.Fatal(err)
	}
	gateway(sb, "beta")
	if len(r.drv.gateways) != 0 {
		t.Errorf("SetGateway calls after a non-gateway left: %q", r.drv.gateways)
	}

	// A priority outranks the names.
	sb2 := r.sandbox(t, "c2")
	ports2 := []PortRequest{{Proto: "tcp", Port: 80, HostPortStart: 8301, HostPortEnd: 8301}}
	r.join(t, sb2, "zeta", JoinRequest{ContainerID: "c2", Name: "two", GwPriority: 5, Ports: ports2})
	route(r.join(t, sb2, "alpha", JoinRequest{ContainerID: "c2", Name: "two"}), false)
	route(r.join(t, sb2, "beta", JoinRequest{ContainerID: "c2", Name: "two", GwPriority: 6}), true)
	if got := r.c.PortsOf(sb2.ID); len(got) != 1 {
		t.Errorf("c2's ports %v, want one", got)
	}
	for _, a := range r.c.Attachments(sb2.ID) {
		if (a.Network.Name == "beta") != (len(a.Endpoint.Ports) == 1) {
			t.Errorf("c2's %s endpoint publishes %v; want the ports on beta", a.Network.Name, a.Endpoint.Ports)
		}
	}
	if err := r.c.Leave(ctx, sb2.ID, "beta"); err != nil {
		t.Fatal(err)
	}
	if err := r.c.Leave(ctx, sb2.ID, "zeta"); err != nil {
		t.Fatal(err)
	}
	if err := r.c.Leave(ctx, sb2.ID, "alpha"); err != nil {
		t.Fatal(err)
	}

	// A join that outranks the gateway but cannot publish its ports fails,
	// and the ports and the route stay on beta.
	r.fw.mu.Lock()
	r.fw.failAdd = errors.New("nft: no room")
	r.fw.mu.Unlock()
	r.drv.gateways = nil
	if _, err := r.c.Join(ctx, sb.ID, "local", JoinRequest{ContainerID: "c1", Name: "one", GwPriority: 1}); err == nil {
		t.Fatal("a join that cannot take the ports succeeded")
	}
	gateway(sb, "beta")
	if len(r.drv.gateways) != 1 || !strings.Contains(r.drv.gateways[0], " via 172.") {
		t.Errorf("SetGateway calls after a failed join: %q, want one, back to beta's", r.drv.gateways)
	}
	if n := len(r.c.Attachments(sb.ID)); n != 2 {
		t.Errorf("%d endpoints after the failed join, want 2 (aaa, beta)", n)
	}
}

// zetaThenAlpha makes networks zeta and alpha, and a container on both:
// on zeta first with port 8310 published, then on alpha, which outranks
// zeta by name and so takes the default route and the port.
func zetaThenAlpha(t *testing.T, r *rig) (sb *Sandbox, zeta, alpha *Endpoint) {
	t.Helper()
	for _, name := range []string{"zeta", "alpha"} {
		if _, err := r.c.CreateNetwork(context.Background(), CreateRequest{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	ports := []PortRequest{{Proto: "tcp", Port: 80, HostPortStart: 8310, HostPortEnd: 8310}}
	sb = r.sandbox(t, "c1")
	zeta = r.join(t, sb, "zeta", JoinRequest{ContainerID: "c1", Name: "one", Ports: ports})
	alpha = r.join(t, sb, "alpha", JoinRequest{ContainerID: "c1", Name: "one"})
	return sb, zeta, alpha
}

// portsNotMoved records what a daemon killed before a connect's port move
// leaves: the new endpoint half (as given) and zeta still holding 8310.
func portsNotMoved(t *testing.T, r *rig, half, zeta *Endpoint) {
	t.Helper()
	zrec := cloneEndpoint(zeta)
	zrec.Ports = []PortMapping{{Proto: "tcp", HostIP: anyIP, HostPort: 8310, Port: 80}}
	putEndpoints(t, r, half, zrec)
}

// TestGatewaySettledAfterCrash: a daemon killed in the middle of a
// disconnect of the gateway network (its endpoint recorded "deleting")
// or of a connect that outranks it (recorded "creating", the ports not
// moved yet) comes back with the default route and the ports on the
// gateway endpoint, as the disconnect or connect would have left them.
func TestGatewaySettledAfterCrash(t *testing.T) {
	r := newPortRig(t)
	sb, zeta, alpha := zetaThenAlpha(t, r.rig)
	r.c.flushReady()
	onlyOn := func(when string, ep *Endpoint) {
		t.Helper()
		for _, a := range r.c.Attachments(sb.ID) {
			if got := len(a.Endpoint.Ports) > 0; got != (a.Endpoint.ID == ep.ID) {
				t.Errorf("%s: %s's endpoint publishes %v", when, a.Network.Name, a.Endpoint.Ports)
			}
		}
		if fw := r.fw.portList(); len(fw) != 1 || fw[0].Addr != ep.Address.Addr() {
			t.Errorf("%s: firewall ports %+v, want one to %s", when, fw, ep.Address.Addr())
		}
	}
	onlyOn("after the connect", alpha)

	// The disconnect of alpha recorded its intent, and the daemon died.
	dying := cloneEndpoint(alpha)
	dying.State = EndpointDeleting
	putEndpoints(t, r.rig, dying)
	r.drv.gateways = nil
	r.restartWith(t, newFakeHolder())
	onlyOn("after the restart", zeta)
	if want := zeta.IfName + " via " + zeta.Gateway.String(); !slices.Contains(r.drv.gateways, want) {
		t.Errorf("SetGateway calls %q, want %q", r.drv.gateways, want)
	}

	// A connect of alpha recorded its intent and made the pair, and the
	// daemon died before the ports moved.
	again := r.join(t, sb, "alpha", JoinRequest{ContainerID: "c1", Name: "one"})
	r.c.flushReady()
	half := cloneEndpoint(again)
	half.State, half.Ports = EndpointCreating, nil
	portsNotMoved(t, r.rig, half, zeta)
	r.restartWith(t, newFakeHolder())
	onlyOn("after the second restart", again)
}

// TestIPv6OnlyPorts: on an IPv6-only network only the mappings that can
// be IPv6 are published, as moby's configurePortBindingIPv4 skips a
// container without an IPv4 address: a port on every address goes on
// [::] alone, one on an IPv6 host address stays, one on an IPv4 host
// address is left out. The firewall DNATs them to the IPv6 address and
// the forwarder serves them too (for ::1). The ports go with the IPv4
// gateway while the container has one and with the IPv6 one otherwise:
// a join of an IPv4 network takes them over, and its leaving gives them
// back to the IPv6-only network.
//
// An IPv4 network joined is the IPv4 gateway and publishes the IPv4
// ports; the IPv6-only network stays the IPv6 gateway and keeps the
// IPv6 ones, as Docker 28's endpoints with noProxy6To4.
func TestIPv6OnlyPorts(t *testing.T) {
	r := newPortRigWith(t, true, false)
	ctx := context.Background()
	if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "six", NoIPv4: true, EnableIPv6: true, IPAM: []IPAMRequest{{Subnet: mustPrefix("fd00:61::/64")}}}); err != nil {
		t.Fatal(err)
	}
	v6any, v6lo := netip.IPv6Unspecified(), netip.IPv6Loopback()
	sb := r.sandbox(t, "c1")
	ep := r.join(t, sb, "six", JoinRequest{ContainerID: "c1", Name: "web", Ports: []PortRequest{
		{Proto: "tcp", Port: 80, HostPortStart: 8080, HostPortEnd: 8080},
		{Proto: "tcp", Port: 81, HostIP: localIP, HostPortStart: 8081, HostPortEnd: 8081},
		{Proto: "tcp", Port: 82, HostIP: v6lo, HostPortStart: 8082, HostPortEnd: 8082},
	}})
	want := []PortMapping{
		{Proto: "tcp", HostIP: v6any, HostPort: 8080, Port: 80},
		{Proto: "tcp", HostIP: v6lo, HostPort: 8082, Port: 82},
	}
	if diff := cmp.Diff(want, ep.Ports, cmpAddr); diff != "" {
		t.Fatalf("ports (-want +got):\n%s", diff)
	}
	ctr := ep.Address6.Addr()
	wantFW := []firewall.PortMapping{
		{Proto: firewall.TCP, HostPort: 8080, Addr: ctr, Port: 80}, // on [::]: the fake keeps every address as none
		{Proto: firewall.TCP, HostIP: v6lo, HostPort: 8082, Addr: ctr, Port: 82},
	}
	if diff := cmp.Diff(wantFW, r.fw.portList(), cmpAddr); diff != "" {
		t.Errorf("firewall ports (-want +got):\n%s", diff)
	}
	wantFwd := map[HostPort]netip.AddrPort{
		{Proto: "tcp", HostIP: v6any, Port: 8080}: netip.AddrPortFrom(ctr, 80),
		{Proto: "tcp", HostIP: v6lo, Port: 8082}:  netip.AddrPortFrom(ctr, 82),
	}
	if diff := cmp.Diff(wantFwd, r.ports.forwarded, cmpAddr); diff != "" {
		t.Errorf("forwarded (-want +got):\n%s", diff)
	}

	// An IPv4 network joined: its endpoint is the IPv4 gateway and
	// publishes the IPv4 ports; the IPv6 ones stay where they are, DNATed
	// and forwarded to the IPv6 address as before.
	four := r.join(t, sb, "bridge", JoinRequest{ContainerID: "c1", Name: "web"})
	if got := r.c.Endpoints(mustNetworkID(t, r.rig, "six"))[0].Ports; !cmp.Equal(want, got, cmpAddr) {
		t.Errorf("the IPv6-only endpoint's ports: %v, want %v", got, want)
	}
	want4 := []PortMapping{
		{Proto: "tcp", HostIP: anyIP, HostPort: 8080, Port: 80},
		{Proto: "tcp", HostIP: localIP, HostPort: 8081, Port: 81},
	}
	if diff := cmp.Diff(want4, endpointOf(t, r.rig, four.ID).Ports, cmpAddr); diff != "" {
		t.Errorf("the IPv4 gateway's ports (-want +got):\n%s", diff)
	}
	ctr4 := four.Address.Addr()
	wantFW4 := append([]firewall.PortMapping{{Proto: firewall.TCP, HostPort: 8080, Addr: ctr4, Port: 80}}, wantFW[0],
		firewall.PortMapping{Proto: firewall.TCP, HostIP: localIP, HostPort: 8081, Addr: ctr4, Port: 81}, wantFW[1])
	if diff := cmp.Diff(wantFW4, r.fw.portList(), cmpAddr, cmpopts.SortSlices(func(a, b firewall.PortMapping) bool { return a.String() < b.String() })); diff != "" {
		t.Errorf("firewall ports with both gateways (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantFwd, r.ports.forwarded, cmpAddr); diff != "" {
		t.Errorf("forwarded with both gateways (-want +got):\n%s", diff)
	}
	// It leaves: the IPv6 ones stay, the IPv4 ones go.
	if err := r.c.Leave(ctx, sb.ID, "bridge"); err != nil {
		t.Fatal(err)
	}
	if got := r.c.Endpoints(mustNetworkID(t, r.rig, "six"))[0].Ports; !cmp.Equal(want, got, cmpAddr) {
		t.Errorf("after the IPv4 network left: %v, want %v", got, want)
	}
	if diff := cmp.Diff(wantFW, r.fw.portList(), cmpAddr); diff != "" {
		t.Errorf("firewall ports after the IPv4 network left (-want +got):\n%s", diff)
	}
	if n := r.ports.count(); n != 2 {
		t.Errorf("%d host ports held after the IPv4 network left, want 2", n)
	}
	if err := r.c.Leave(ctx, sb.ID, "six"); err != nil {
		t.Fatal(err)
	}
	if n := r.ports.count(); n != 0 || len(r.fw.portList()) != 0 {
		t.Errorf("after Leave: %d held, firewall %v", n, r.fw.portList())
	}
}

// TestPortsFollowEachFamilysGateway: an IPv4-only gateway publishes the
// [::] sides of its ports through the userland proxy while the sandbox
// has no IPv6 gateway; an IPv6-only network joined becomes the IPv6
// gateway and takes the IPv6 sides alone, DNATed and forwarded to its
// IPv6 address (moby's noProxy6To4), with the host ports their IPv4
// sides have, ephemeral ones included, and the IPv4 ports stay as they
// were. A restart keeps it so; the IPv6-only network's leaving gives the
// IPv6 sides back to the proxy. A record from before (the IPv4 gateway
// holding both sides beside an IPv6 gateway) is settled at the start.
func TestPortsFollowEachFamilysGateway(t *testing.T) {
	r := newPortRigWith(t, true, false)
	ctx := context.Background()
	if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "six", NoIPv4: true, EnableIPv6: true, IPAM: []IPAMRequest{{Subnet: mustPrefix("fd00:63::/64")}}}); err != nil {
		t.Fatal(err)
	}
	v6any, v6lo := netip.IPv6Unspecified(), netip.IPv6Loopback()
	sb := r.sandbox(t, "c1")
	four := r.join(t, sb, "bridge", JoinRequest{ContainerID: "c1", Name: "web", Ports: []PortRequest{
		{Proto: "tcp", Port: 80, HostPortStart: 8080, HostPortEnd: 8080},
		{Proto: "udp", Port: 53}, // ephemeral
		{Proto: "tcp", Port: 82, HostIP: v6lo, HostPortStart: 8082, HostPortEnd: 8082},
		{Proto: "tcp", Port: 80}, // ephemeral, to the container port of the first
	}})
	eph, eph2 := four.Ports[2].HostPort, four.Ports[5].HostPort
	v4 := []PortMapping{
		{Proto: "tcp", HostIP: anyIP, HostPort: 8080, Port: 80},
		{Proto: "udp", HostIP: anyIP, HostPort: eph, Port: 53},
		{Proto: "tcp", HostIP: anyIP, HostPort: eph2, Port: 80},
	}
	v6 := []PortMapping{
		{Proto: "tcp", HostIP: v6any, HostPort: 8080, Port: 80},
		{Proto: "udp", HostIP: v6any, HostPort: eph, Port: 53},
		{Proto: "tcp", HostIP: v6lo, HostPort: 8082, Port: 82},
		{Proto: "tcp", HostIP: v6any, HostPort: eph2, Port: 80},
	}
	byHost := cmpopts.SortSlices(func(a, b PortMapping) bool { return a.String() < b.String() })
	// check says where each side is: the IPv4 gateway publishes on4,
	// the IPv6-only endpoint on6; the IPv6 sides are forwarded to to,
	// and DNATed to dnat6 if valid.
	check := func(when string, on4, on6 []PortMapping, to, dnat6 netip.Addr) {
		t.Helper()
		got4 := endpointOf(t, r.rig, four.ID).Ports
		if diff := cmp.Diff(on4, got4, cmpAddr, byHost); diff != "" {
			t.Errorf("%s: the IPv4 gateway's ports (-want +got):\n%s", when, diff)
		}
		if got6 := r.c.Endpoints(mustNetworkID(t, r.rig, "six")); len(got6) == 1 {
			if diff := cmp.Diff(on6, got6[0].Ports, cmpAddr, byHost); diff != "" {
				t.Errorf("%s: the IPv6-only endpoint's ports (-want +got):\n%s", when, diff)
			}
		}
		wantFwd := map[HostPort]netip.AddrPort{}
		for _, m := range v6 {
			wantFwd[HostPort{Proto: m.Proto, HostIP: m.HostIP, Port: m.HostPort}] = netip.AddrPortFrom(to, m.Port)
		}
		if diff := cmp.Diff(wantFwd, r.ports.forwarded, cmpAddr); diff != "" {
			t.Errorf("%s: forwarded (-want +got):\n%s", when, diff)
		}
		var dnat []netip.Addr
		for _, m := range r.fw.portList() {
			dnat = append(dnat, m.Addr)
		}
		want := []netip.Addr{four.Address.Addr(), four.Address.Addr(), four.Address.Addr()}
		if dnat6.IsValid() {
			want = append(want, dnat6, dnat6, dnat6, dnat6)
		}
		if diff := cmp.Diff(want, dnat, cmpAddr, cmpopts.SortSlices(netip.Addr.Less)); diff != "" {
			t.Errorf("%s: the firewall's DNAT targets (-want +got):\n%s", when, diff)
		}
		if n := r.ports.count(); n != len(v4)+len(v6) {
			t.Errorf("%s: %d host ports held, want %d", when, n, len(v4)+len(v6))
		}
	}
	check("the IPv4 network alone", slices.Concat(v4, v6), nil, four.Address.Addr(), netip.Addr{})

	six := r.join(t, sb, "six", JoinRequest{ContainerID: "c1", Name: "web"})
	ctr6 := six.Address6.Addr()
	check("the IPv6-only network joined", v4, v6, ctr6, ctr6)
	r.restartWith(t, newFakeHolder())
	check("after a restart", v4, v6, ctr6, ctr6)

	if err := r.c.Leave(ctx, sb.ID, "six"); err != nil {
		t.Fatal(err)
	}
	check("the IPv6-only network left", slices.Concat(v4, v6), nil, four.Address.Addr(), netip.Addr{})

	// Joined again, and recorded as a daemon before this one left it:
	// the IPv4 gateway holding both sides.
	six = r.join(t, sb, "six", JoinRequest{ContainerID: "c1", Name: "web"})
	r.c.flushReady()
	old4, old6 := cloneEndpoint(endpointOf(t, r.rig, four.ID)), cloneEndpoint(six)
	old4.Ports, old6.Ports = slices.Concat(v4, v6), nil
	putEndpoints(t, r.rig, old4, old6)
	r.restartWith(t, newFakeHolder())
	check("an old record settled at the start", v4, v6, six.Address6.Addr(), six.Address6.Addr())
}

// portsOn maps each network of sb to its endpoint's mappings, sorted
// ("0.0.0.0" before ":::"), and checks that the host ports held and the
// firewall's elements are those of the mappings.
func portsOn(t *testing.T, r *portRig, sb *Sandbox) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	held, fw := 0, 0
	for _, a := range r.c.Attachments(sb.ID) {
		for _, m := range a.Endpoint.Ports {
			out[a.Network.Name] = append(out[a.Network.Name], m.String())
			if !m.Routed() {
				held++
			}
		}
		slices.Sort(out[a.Network.Name])
		fw += len(firewallPorts(a.Endpoint, r.c.directFamilies(a.Network)))
	}
	if n := r.ports.count(); n != held {
		t.Errorf("%d host ports held, want the %d of the mappings %v", n, held, out)
	}
	if n := len(r.fw.portList()); n != fw {
		t.Errorf("%d ports in the firewall, want the %d of the mappings %v", n, fw, out)
	}
	return out
}

// TestMovedPortsKeepOneHostPort: without the userland proxy an IPv4-only
// gateway publishes an ephemeral port on 0.0.0.0 alone; a dual-stack
// network that outranks it takes both families, and both sides of the
// port get one host port, as moby's addPortMappings gives them together.
// When it leaves, and the IPv4-only and an IPv6-only network take a
// family each, the [::] side again takes the port its IPv4 side got.
func TestMovedPortsKeepOneHostPort(t *testing.T) {
	r := newPortRigWith(t, true, true)
	ctx := context.Background()
	for _, req := range []CreateRequest{
		{Name: "a-v4"},
		{Name: "b-v6", NoIPv4: true, EnableIPv6: true, IPAM: []IPAMRequest{{Subnet: mustPrefix("fd00:64::/64")}}},
		{Name: "c-dual", EnableIPv6: true, IPAM: []IPAMRequest{{Subnet: mustPrefix("fd00:65::/64")}}},
	} {
		if _, err := r.c.CreateNetwork(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	sb := r.sandbox(t, "c1")
	a := r.join(t, sb, "a-v4", JoinRequest{ContainerID: "c1", Name: "c1", Ports: []PortRequest{{Proto: "tcp", Port: 80}}})
	if len(a.Ports) != 1 {
		t.Fatalf("a-v4's ports %v, want 0.0.0.0 alone (no proxy)", a.Ports)
	}
	c := r.join(t, sb, "c-dual", JoinRequest{ContainerID: "c1", Name: "c1", GwPriority: 5})
	got := portsOn(t, r, sb)
	cp := endpointOf(t, r.rig, c.ID).Ports
	if len(got["a-v4"]) != 0 || len(cp) != 2 || cp[0].HostPort != cp[1].HostPort {
		t.Errorf("c-dual joined: %v, want c-dual's two sides on one host port", got)
	}
	b := r.join(t, sb, "b-v6", JoinRequest{ContainerID: "c1", Name: "c1"})
	if err := r.c.Leave(ctx, sb.ID, "c-dual"); err != nil {
		t.Fatal(err)
	}
	got = portsOn(t, r, sb)
	ap, bp := endpointOf(t, r.rig, a.ID).Ports, endpointOf(t, r.rig, b.ID).Ports
	if len(ap) != 1 || len(bp) != 1 || !ap[0].HostIP.Is4() || !bp[0].HostIP.Is6() || ap[0].HostPort != bp[0].HostPort {
		t.Errorf("c-dual left: %v, want a-v4's IPv4 side and b-v6's IPv6 side on one host port", got)
	}
}

// TestPortMoveWhoseWithdrawalFails: a connect that outranks both
// gateways (an IPv4-only one of higher priority and a dual-stack one
// giving IPv6) fails when the firewall cannot withdraw one of their
// families, and every port is left where it was, held and published
// once: none recorded and let go.
func TestPortMoveWhoseWithdrawalFails(t *testing.T) {
	for skip := range 2 { // the first withdrawal fails, or the second
		r := newPortRigWith(t, true, false)
		ctx := context.Background()
		for _, req := range []CreateRequest{
			{Name: "a-v4"},
			{Name: "b-dual", EnableIPv6: true, IPAM: []IPAMRequest{{Subnet: mustPrefix("fd00:66::/64")}}},
			{Name: "c-dual", EnableIPv6: true, IPAM: []IPAMRequest{{Subnet: mustPrefix("fd00:67::/64")}}},
		} {
			if _, err := r.c.CreateNetwork(ctx, req); err != nil {
				t.Fatal(err)
			}
		}
		sb := r.sandbox(t, "c1")
		r.join(t, sb, "a-v4", JoinRequest{ContainerID: "c1", Name: "c1", GwPriority: 10,
			Ports: []PortRequest{{Proto: "tcp", Port: 80, HostPortStart: 8080, HostPortEnd: 8080}}})
		r.join(t, sb, "b-dual", JoinRequest{ContainerID: "c1", Name: "c1"})
		want := map[string][]string{"a-v4": {"0.0.0.0:8080->80/tcp"}, "b-dual": {":::8080->80/tcp"}}
		if diff := cmp.Diff(want, portsOn(t, r, sb)); diff != "" {
			t.Fatalf("before (-want +got):\n%s", diff)
		}
		r.fw.mu.Lock()
		r.fw.failDel, r.fw.failDelSkip = errors.New("nft: busy"), skip
		r.fw.mu.Unlock()
		if _, err := r.c.Join(ctx, sb.ID, "c-dual", JoinRequest{ContainerID: "c1", Name: "c1", GwPriority: 20}); err == nil {
			t.Fatalf("skip %d: a connect whose ports could not move succeeded", skip)
		}
		if diff := cmp.Diff(want, portsOn(t, r, sb)); diff != "" {
			t.Errorf("skip %d: after the failed connect (-want +got):\n%s", skip, diff)
		}
	}
}

func endpointOf(t *testing.T, r *rig, id string) *Endpoint {
	t.Helper()
	for _, n := range r.c.Networks() {
		for _, ep := range r.c.Endpoints(n.ID) {
			if ep.ID == id {
				return ep
			}
		}
	}
	t.Fatalf("endpoint %s not found", id)
	return nil
}

// TestIPv6HostBindingOption: host_binding_ipv4 takes an IPv6 address, as
// moby's DefaultBindingIP does: a port asked for without a host address
// is then published on that address alone, no IPv4 side: "::" publishes
// on [::] (proxied to an IPv4-only container), an IPv6 address of the
// host on that address (DNAT'ed to a dual-stack container's IPv6
// address).
func TestIPv6HostBindingOption(t *testing.T) {
	r := newPortRigWith(t, true, false)
	ctx := context.Background()
	v6any, host6 := netip.IPv6Unspecified(), netip.MustParseAddr("2001:db8:100::2")
	if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "any6", Options: map[string]string{OptHostBindingIPv4: "::"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "dual", EnableIPv6: true, IPAM: []IPAMRequest{{Subnet: mustPrefix("fd00:62::/64")}},
		Options: map[string]string{OptHostBindingIPv4: host6.String()}}); err != nil {
		t.Fatal(err)
	}
	sb := r.sandbox(t, "c1")
	ep := r.join(t, sb, "any6", JoinRequest{ContainerID: "c1", Name: "web", Ports: []PortRequest{
		{Proto: "tcp", Port: 80, HostPortStart: 8080, HostPortEnd: 8080},
		{Proto: "tcp", Port: 81, HostIP: anyIP, HostPortStart: 8081, HostPortEnd: 8081}, // explicit wins
	}})
	want := []PortMapping{
		{Proto: "tcp", HostIP: v6any, HostPort: 8080, Port: 80},
		{Proto: "tcp", HostIP: anyIP, HostPort: 8081, Port: 81},
	}
	if diff := cmp.Diff(want, ep.Ports, cmpAddr); diff != "" {
		t.Errorf("any6 ports (-want +got):\n%s", diff)
	}
	if got := r.ports.forwarded[HostPort{Proto: "tcp", HostIP: v6any, Port: 8080}]; got != netip.AddrPortFrom(ep.Address.Addr(), 80) {
		t.Errorf("[::]:8080 forwarded to %v, want the IPv4 container's port 80", got)
	}
	sb2 := r.sandbox(t, "c2")
	ep2 := r.join(t, sb2, "dual", JoinRequest{ContainerID: "c2", Name: "db", Ports: []PortRequest{
		{Proto: "tcp", Port: 5432, HostPortStart: 5432, HostPortEnd: 5432},
	}})
	if diff := cmp.Diff([]PortMapping{{Proto: "tcp", HostIP: host6, HostPort: 5432, Port: 5432}}, ep2.Ports, cmpAddr); diff != "" {
		t.Errorf("dual ports (-want +got):\n%s", diff)
	}
	found := false
	for _, m := range r.fw.portList() {
		if m.HostPort == 5432 {
			found = m.HostIP == host6 && m.Addr == ep2.Address6.Addr()
		}
	}
	if !found {
		t.Errorf("no DNAT of [%s]:5432 to %s in %v", host6, ep2.Address6.Addr(), r.fw.portList())
	}
}

// TestRestartMovesPortsToTheGateway: a connect that outranked the
// gateway made its pair and route, and its ready mark reached the disk
// (with another record, or the 10 ms timer) before its ports moved; the
// daemon died then. No endpoint is half done, yet the start moves the
// ports to the gateway, where the route is (review of session 30).
func TestRestartMovesPortsToTheGateway(t *testing.T) {
	r := newPortRig(t)
	sb, zeta, alpha := zetaThenAlpha(t, r.rig)
	r.c.flushReady()
	half := cloneEndpoint(alpha)
	half.Ports = nil // ready, its ports not moved yet
	portsNotMoved(t, r.rig, half, zeta)
	r.restartWith(t, newFakeHolder())
	if fw := r.fw.portList(); len(fw) != 1 || fw[0].Addr != alpha.Address.Addr() {
		t.Errorf("after restart: firewall ports %+v, want one to the gateway alpha %s", fw, alpha.Address.Addr())
	}
	for _, a := range r.c.Attachments(sb.ID) {
		if held := len(a.Endpoint.Ports) > 0; held != (a.Network.Name == "alpha") {
			t.Errorf("after restart: %s holds ports %v", a.Network.Name, a.Endpoint.Ports)
		}
	}
	if n := r.ports.count(); n != 1 {
		t.Errorf("%d host ports held after restart, want 1", n)
	}
}

// noteWatcher calls before ahead of each Note.
type noteWatcher struct {
	store.Store
	before func()
}

func (s *noteWatcher) Note(fn func(store.Tx) error) error {
	if s.before != nil {
		s.before()
	}
	return s.Store.Note(fn)
}

// TestDisconnectMovesGatewayAndPortsBeforeForgetting: the disconnect of
// a sandbox's gateway network gives the route and the ports to the next
// network before the left endpoint's record is deleted, so that a daemon
// killed at any point finds either a "deleting" record (and the start
// settles the sandbox) or a settled one. With the delete first, a kill
// before the move left the container without a default route or ports
// until it restarted.
func TestDisconnectMovesGatewayAndPortsBeforeForgetting(t *testing.T) {
	st := &noteWatcher{Store: store.NewMemory()}
	r := &portRig{rig: &rig{st: st, drv: newFakeDriver(), sbs: newFakeSandboxes(), fw: newFakeFirewall(), ids: seqIDs()}}
	r.restartWith(t, newFakeHolder())
	ctx := context.Background()
	sb, zeta, alpha := zetaThenAlpha(t, r.rig)
	if fw := r.fw.portList(); len(fw) != 1 || fw[0].Addr != alpha.Address.Addr() {
		t.Fatalf("ports %+v, want them on alpha", fw)
	}
	wantRoute := zeta.IfName + " via " + zeta.Gateway.String()
	checked := false
	st.before = func() {
		var ep Endpoint
		if err := st.View(func(tx store.Tx) error {
			return tx.Get(store.BucketEndpoints, alpha.ID, &ep)
		}); err != nil || ep.State != EndpointDeleting {
			return // not alpha's delete
		}
		checked = true
		r.drv.mu.Lock()
		routed := slices.Contains(r.drv.gateways, wantRoute)
		r.drv.mu.Unlock()
		if !routed {
			t.Errorf("alpha's record goes before zeta has the default route (SetGateway calls %q)", r.drv.gateways)
		}
		if fw := r.fw.portList(); len(fw) != 1 || fw[0].Addr != zeta.Address.Addr() {
			t.Errorf("alpha's record goes before the ports moved to zeta: %+v", fw)
		}
	}
	if err := r.c.Leave(ctx, sb.ID, "alpha"); err != nil {
		t.Fatal(err)
	}
	st.before = nil
	if !checked {
		t.Fatal("no Note deleted alpha's record")
	}
}

// ctxFirewall honours ctx as the nftables firewall does (AddPorts and
// DelPorts return ctx.Err() first); cancelAt, if set, is called as
// AddPorts begins: the client goes away mid-connect.
type ctxFirewall struct {
	*fakeFirewall
	cancelAt func()
}

func (f *ctxFirewall) AddPorts(ctx context.Context, ps []firewall.PortMapping) error {
	if f.cancelAt != nil {
		f.cancelAt()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return f.fakeFirewall.AddPorts(ctx, ps)
}

func (f *ctxFirewall) DelPorts(ctx context.Context, ps []firewall.PortMapping) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return f.fakeFirewall.DelPorts(ctx, ps)
}

// TestConnectWhoseClientGoesAway: a connect that publishes the
// container's ports (its first non-internal network) runs to its end
// when its request is cancelled halfway. It failed, and its rollback,
// cut off by the same cancelled context, left the host port held and the
// endpoint stuck, so that a second connect was refused (review of
// session 30).
func TestConnectWhoseClientGoesAway(t *testing.T) {
	r := newPortRig(t)
	fw := &ctxFirewall{fakeFirewall: r.fw}
	h := newFakeHolder()
	r.ports = h
	r.c = New(Config{
		Store: r.st, Driver: r.drv, Sandboxes: r.sbs, Firewall: fw, Ports: h,
		Nameservers: []netip.Addr{netip.MustParseAddr("10.255.255.53")},
		NewID:       r.ids,
		Now:         func() time.Time { return time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC) },
	})
	bg := context.Background()
	if err := r.c.Start(bg); err != nil {
		t.Fatal(err)
	}
	if _, err := r.c.CreateNetwork(bg, CreateRequest{Name: "inner", Internal: true}); err != nil {
		t.Fatal(err)
	}
	sb := r.sandbox(t, "c1")
	web := []PortRequest{{Proto: "tcp", Port: 80, HostPortStart: 8200, HostPortEnd: 8200}}
	r.join(t, sb, "inner", JoinRequest{ContainerID: "c1", Name: "i1", Ports: web})
	ctx, cancel := context.WithCancel(bg)
	fw.cancelAt = cancel
	ep, err := r.c.Join(ctx, sb.ID, "bridge", JoinRequest{ContainerID: "c1", Name: "i1"})
	fw.cancelAt = nil
	if err != nil {
		t.Fatalf("connect whose client went away: %v", err)
	}
	if len(ep.Ports) != 1 || h.count() != 1 || len(r.fw.portList()) != 1 {
		t.Errorf("ports %v, %d host ports held, firewall %v; want the one port published", ep.Ports, h.count(), r.fw.portList())
	}
	// And a disconnect whose client goes away.
	ctx, cancel = context.WithCancel(bg)
	cancel()
	if err := r.c.Leave(ctx, sb.ID, "bridge"); err != nil {
		t.Fatalf("disconnect with its request cancelled: %v", err)
	}
	if h.count() != 0 || len(r.c.Attachments(sb.ID)) != 1 {
		t.Errorf("after the disconnect: %d host ports held, %d attachments", h.count(), len(r.c.Attachments(sb.ID)))
	}
}

// TestSamePortAcrossHostAddresses: bindings that differ only in their
// host address share one host port, as Docker 28 gives them (moby's
// needSamePort): a range on two addresses where the first port is taken
// on one moves both to the next, and ephemeral ones get one port; they
// got a port each.
func TestSamePortAcrossHostAddresses(t *testing.T) {
	r := newPortRig(t)
	ip1, ip2 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	r.ports.busy[HostPort{Proto: "tcp", HostIP: ip2, Port: 8000}] = true
	sb := r.sandbox(t, "c1")
	ep := r.join(t, sb, "bridge", JoinRequest{ContainerID: "c1", Name: "web", Ports: []PortRequest{
		{Proto: "tcp", Port: 80, HostIP: ip1, HostPortStart: 8000, HostPortEnd: 8010},
		{Proto: "tcp", Port: 80, HostIP: ip2, HostPortStart: 8000, HostPortEnd: 8010},
		{Proto: "udp", Port: 53, HostIP: ip1},
		{Proto: "udp", Port: 53, HostIP: ip2},
		{Proto: "tcp", Port: 81, HostIP: ip1, HostPortStart: 9000, HostPortEnd: 9000},
	}})
	if len(ep.Ports) != 5 || ep.Ports[0].HostPort != 8001 || ep.Ports[1].HostPort != 8001 {
		t.Errorf("the range on two addresses: %v, want 8001 on both", ep.Ports)
	}
	if len(ep.Ports) == 5 && (ep.Ports[2].HostPort == 0 || ep.Ports[2].HostPort != ep.Ports[3].HostPort) {
		t.Errorf("ephemeral ports on two addresses: %v, want one port for both", ep.Ports)
	}
	if n := r.ports.count(); n != 5 {
		t.Errorf("%d host ports held, want 5 (8000 on 127.0.0.1 let go)", n)
	}
}

// ctxNetFirewall is ctxFirewall for whole networks: DelNetwork returns
// ctx.Err() first, as the nftables firewall does.
type ctxNetFirewall struct{ *fakeFirewall }

func (f *ctxNetFirewall) DelNetwork(ctx context.Context, n firewall.Network) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return f.fakeFirewall.DelNetwork(ctx, n)
}

// TestRemoveNetworkWhoseClientGoesAway: a network removal whose request
// is cancelled still removes its rules: they stayed while its subnet
// counted as free, and the next network on it was refused.
func TestRemoveNetworkWhoseClientGoesAway(t *testing.T) {
	r := newRig(t)
	fw := &ctxNetFirewall{r.fw}
	r.c = New(Config{Store: r.st, Driver: r.drv, Sandboxes: r.sbs, Firewall: fw, NewID: r.ids,
		Nameservers: []netip.Addr{netip.MustParseAddr("10.255.255.53")}})
	if err := r.c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	n, err := r.c.CreateNetwork(context.Background(), CreateRequest{Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.c.RemoveNetwork(ctx, "web"); err != nil {
		t.Fatalf("RemoveNetwork with its request cancelled: %v", err)
	}
	if r.fw.has(n.Bridge.Name) {
		t.Errorf("the firewall keeps the removed network's bridge %s", n.Bridge.Name)
	}
}

// TestDirectRoutingContainerSides: on a network that trusts a host
// interface, each container side a port is published to is one routed
// element in the firewall beside the DNAT mappings, withdrawn with them;
// the daemon's AllowDirectRouting does the same on every network from
// the start that sets it, and a start without it takes them away.
func TestDirectRoutingContainerSides(t *testing.T) {
	r := newPortRig(t)
	ctx := context.Background()
	if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "trusting", IPAM: []IPAMRequest{{Subnet: mustPrefix("10.60.0.0/24")}},
		Options: map[string]string{OptTrustedHostInterfaces: "eth1"}}); err != nil {
		t.Fatal(err)
	}
	sb := r.sandbox(t, "c1")
	r.join(t, sb, "trusting", JoinRequest{ContainerID: "c1", Name: "web", Ports: []PortRequest{
		{Proto: "tcp", Port: 80, HostPortStart: 8080, HostPortEnd: 8080},
		{Proto: "tcp", Port: 80, HostIP: localIP, HostPortStart: 9090, HostPortEnd: 9090},
		{Proto: "udp", Port: 53, HostPortStart: 5353, HostPortEnd: 5353},
	}})
	sb2 := r.sandbox(t, "c2")
	r.join(t, sb2, "bridge", JoinRequest{ContainerID: "c2", Name: "other", Ports: []PortRequest{
		{Proto: "tcp", Port: 80, HostPortStart: 8081, HostPortEnd: 8081},
	}})
	routed := func() []string {
		var out []string
		for _, m := range r.fw.portList() {
			if m.Routed {
				out = append(out, m.String())
			}
		}
		slices.Sort(out)
		return out
	}
	trusting := []string{"routed->10.60.0.2:53/udp", "routed->10.60.0.2:80/tcp"}
	if got := routed(); !slices.Equal(got, trusting) {
		t.Errorf("routed elements %q, want %q (the trusting network's container sides, once each)", got, trusting)
	}
	if n := len(r.fw.portList()); n != 6 {
		t.Errorf("%d firewall ports, want the 4 mappings and 2 container sides: %v", n, r.fw.portList())
	}

	r.direct = true
	r.c.Close()
	r.restartWith(t, r.ports)
	all := append([]string{"routed->172.17.0.2:80/tcp"}, trusting...)
	slices.Sort(all)
	if got := routed(); !slices.Equal(got, all) {
		t.Errorf("with direct routing allowed: routed elements %q, want %q", got, all)
	}
	for _, n := range r.fw.nets {
		if !n.DirectRouting {
			t.Errorf("network %s: direct routing not allowed after a start that allows it", n.Bridge)
		}
	}
	if err := r.c.Leave(ctx, sb.ID, "trusting"); err != nil {
		t.Fatal(err)
	}
	if got := routed(); !slices.Equal(got, []string{"routed->172.17.0.2:80/tcp"}) {
		t.Errorf("after the trusting network's endpoint left: routed elements %q", got)
	}

	r.direct = false
	r.c.Close()
	r.restartWith(t, r.ports)
	if got := routed(); len(got) != 0 {
		t.Errorf("after a start without direct routing: routed elements %q, want none", got)
	}
}
