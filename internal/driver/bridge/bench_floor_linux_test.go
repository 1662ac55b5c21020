package bridge

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/driverapi"
	"github.com/berth-net/berth/internal/sandbox"
)

// BenchmarkNaiveAttach is the bare-netlink attach that issue 5 calls the
// floor (veth with its peer created in the sandbox, bridge port, links up,
// address, default route; nothing else), on a bridge with 0 or 800 ports
// made the same way. "ipv6=on" is the kernel's default; "ipv6=off" turns
// IPv6 off on both ends before they get a carrier, as Join does (see
// disableHostIPv6 and noIPv6Autoconf). The difference between the two at
// 800 ports is what IPv6 on ports and container interfaces costs.
//
//	go test -run '^$' -bench NaiveAttach -benchtime 200x ./internal/driver/bridge/
func BenchmarkNaiveAttach(b *testing.B) {
	for _, ipv6 := range []string{"on", "off"} {
		// 800, not 1,000: the timed attaches stay (deleting them would
		// disturb the next ones), and a bridge takes at most 1023 ports.
		for _, ports := range []int{0, 800} {
			b.Run(fmt.Sprintf("ipv6=%s/ports=%d", ipv6, ports), func(b *testing.B) {
				w := newWorld(b)
				br := naiveBridge(b, w)
				attach := func(sb string, spec driverapi.EndpointSpec) error {
					return naiveAttach(w, br, sb, spec, ipv6 == "off")
				}
				for i := range ports {
					sb := newBenchSandbox(b)
					if err := attach(sb, benchSpec(i)); err != nil {
						b.Fatalf("background attach %d: %v", i, err)
					}
				}
				if ports+b.N > 1023 {
					b.Fatalf("%d ports + %d attaches exceed a bridge's 1023 ports; lower -benchtime", ports, b.N)
				}
				sb := newBenchSandbox(b)
				var took []time.Duration
				b.ResetTimer()
				for i := range b.N {
					spec := sampleSpec(i)
					t0 := time.Now()
					if err := attach(sb, spec); err != nil {
						b.Fatalf("attach #%d: %v", i, err)
					}
					took = append(took, time.Since(t0))
				}
				b.StopTimer()
				reportPercentiles(b, "attach", took)
			})
		}
	}
}

// naiveBridge makes an up bridge with the kernel's choice of MAC.
func naiveBridge(b *testing.B, w *testWorld) netlink.Link {
	b.Helper()
	attrs := netlink.NewLinkAttrs()
	attrs.Name = "br-test"
	br := &netlink.Bridge{LinkAttrs: attrs}
	if err := w.h.LinkAdd(br); err != nil {
		b.Fatal(err)
	}
	if err := w.h.LinkSetUp(br); err != nil {
		b.Fatal(err)
	}
	gw := ipNet(benchSpec(0).Address)
	gw.IP = net.IP(benchSpec(0).Gateway.AsSlice())
	if err := w.h.AddrAdd(br, &netlink.Addr{IPNet: gw}); err != nil {
		b.Fatal(err)
	}
	return br
}

func newBenchSandbox(b *testing.B) string {
	b.Helper()
	sb := filepath.Join(b.TempDir(), "sandbox")
	if err := sandbox.NewBound(sb); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sandbox.Unbind(sb) })
	return sb
}

// naiveAttach makes one endpoint with the fewest netlink calls the library
// allows and none of Join's checks, tags or extras.
func naiveAttach(w *testWorld, br netlink.Link, sbPath string, spec driverapi.EndpointSpec, ipv6Off bool) error {
	ns, err := netns.GetFromPath(sbPath)
	if err != nil {
		return err
	}
	defer ns.Close()
	sh, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer sh.Close()
	attrs := netlink.NewLinkAttrs()
	attrs.Name = spec.HostIfName
	attrs.MasterIndex = br.Attrs().Index
	veth := netlink.NewVeth(attrs)
	veth.PeerName = spec.IfName
	veth.PeerHardwareAddr = spec.MAC
	veth.PeerNamespace = netlink.NsFd(ns)
	if err := w.h.LinkAdd(veth); err != nil {
		return err
	}
	if ipv6Off {
		if err := w.d.disableHostIPv6(spec.HostIfName); err != nil {
			return err
		}
	}
	if err := w.h.LinkSetUp(veth); err != nil {
		return err
	}
	peer, err := sh.LinkByName(spec.IfName)
	if err != nil {
		return err
	}
	if ipv6Off {
		if err := noIPv6Autoconf(sh, peer); err != nil {
			return err
		}
	}
	if err := sh.LinkSetUp(peer); err != nil {
		return err
	}
	if err := sh.AddrAdd(peer, &netlink.Addr{IPNet: ipNet(spec.Address)}); err != nil {
		return err
	}
	err = sh.RouteAdd(&netlink.Route{LinkIndex: peer.Attrs().Index, Gw: net.IP(spec.Gateway.AsSlice())})
	if errors.Is(err, unix.EEXIST) {
		return nil // the timed attaches share one sandbox, which keeps the first default route
	}
	return err
}

// noIPv6Autoconf stops the kernel from giving the container's interface an
// IPv6 link-local address. Endpoints are IPv4-only (Docker, too, turns IPv6
// off on a container's interface on an IPv4-only network), and the address
// is not free: each new interface would send duplicate-address probes,
// router solicitations and MLD reports that the bridge floods to every
// port. It must run before the link gets a carrier.
func noIPv6Autoconf(h *netlink.Handle, l netlink.Link) error {
	err := h.LinkSetIP6AddrGenMode(l, nl.IN6_ADDR_GEN_MODE_NONE)
	if errors.Is(err, unix.EAFNOSUPPORT) || errors.Is(err, unix.EOPNOTSUPP) {
		return nil // a kernel without IPv6
	}
	if err != nil {
		return fmt.Errorf("turn off IPv6 autoconfiguration on %q: %w", l.Attrs().Name, err)
	}
	return nil
}
