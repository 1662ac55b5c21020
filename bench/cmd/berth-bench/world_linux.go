package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/bench/internal/floor"
	"github.com/berth-net/berth/bench/internal/harness"
	"github.com/berth-net/berth/internal/sandbox"
)

// The bench's addresses: berth's user network and the floor's bridge are
// both /16s, so that 1,000 ports fit with room to spare.
var (
	benchSubnet  = netip.MustParsePrefix("10.88.0.0/16")
	benchGateway = netip.MustParsePrefix("10.88.0.1/16")
	floorGateway = netip.MustParsePrefix("10.250.0.1/16")
	// floorFirst is the floor's first endpoint address; fillFirst that of
	// the bare ports on berth's bridge, high in its /16, far from the
	// addresses berth's IPAM hands out from the bottom.
	floorFirst = netip.MustParseAddr("10.250.0.2")
	fillFirst  = netip.MustParseAddr("10.88.128.2")
	probeFirst = netip.MustParseAddr("10.250.240.2")
	// The run rows' floor bridge, and its first address for the timed
	// attaches (its fill counts up from the gateway).
	runFloorGateway = netip.MustParsePrefix("10.252.0.1/16")
	runFloorFirst   = netip.MustParseAddr("10.252.240.2")
	// The data plane's own small bridges.
	dpSubnet       = netip.MustParsePrefix("10.89.0.0/24")
	dpFloorGateway = netip.MustParsePrefix("10.251.0.1/16")
)

const (
	benchNet    = "bench"          // berth's user network
	metricsAddr = "127.0.0.1:9323" // the daemon's --metrics-addr, in the bench's namespace
	benchBridge = "brbench"        // its device
	// defaultBridge is the daemon's default bridge ("bridge"): the
	// harness starts it without --bridge-name.
	defaultBridge = "berth0"
	dpNet         = "dataplane"
	dpBridge      = "brdp"
	image         = "busybox"
)

// world is everything one bench run makes inside its private namespaces.
type world struct {
	bin     string // the berth binary, to start the daemon again
	dir     string
	outside string // the outside world's netns
	// The scale floor's own host namespace and outside world: many kernel
	// structures are per namespace (the IPv6 routes every link event walks,
	// the device tables), so berth's bridge and the floor's, each with up
	// to 1,000 ports, live in separate hosts and neither pays for the
	// other's objects.
	floorHost, floorOutside string
	d                       *harness.Daemon
	floor                   *floor.Floor // the reference bridge
	fill                    *floor.Floor // bare ports on berth's bridge
	extra                   []*floor.Floor
	log                     *slog.Logger
	nsSeq                   int
}

// linkList is netlink.LinkList asked again while the kernel reports the
// dump interrupted (NLM_F_DUMP_INTR: links changed during it, as the
// daemon's reaper deletes veths in the background); one such dump once
// failed a full run.
func linkList() ([]netlink.Link, error) {
	for try := 1; ; try++ {
		links, err := netlink.LinkList()
		if !errors.Is(err, netlink.ErrDumpInterrupted) || try == 20 {
			return links, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// requirePrivateNamespace refuses to run anywhere but a fresh network
// namespace (only lo): the bench makes bridges, routes and sysctls that
// must never reach a real host.
func requirePrivateNamespace() error {
	links, err := linkList()
	if err != nil {
		return err
	}
	for _, l := range links {
		if l.Attrs().Name != "lo" {
			return fmt.Errorf("refusing to run: this network namespace has %q; the bench runs only in a fresh one", l.Attrs().Name)
		}
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return err
	}
	return netlink.LinkSetUp(lo)
}

func newWorld(ctx context.Context, bin string, tmpfs bool, log *slog.Logger) (*world, error) {
	dir, err := os.MkdirTemp("", "w")
	if err != nil {
		return nil, err
	}
	if tmpfs { // in the bench's private mount namespace: gone with it
		if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "mode=0700"); err != nil {
			return nil, fmt.Errorf("mount tmpfs on %q: %w", dir, err)
		}
	}
	w := &world{
		bin: bin, dir: dir, log: log,
		outside:      filepath.Join(dir, "outside.netns"),
		floorHost:    filepath.Join(dir, "floorhost.netns"),
		floorOutside: filepath.Join(dir, "flooroutside.netns"),
	}
	if err := os.MkdirAll(filepath.Join(dir, "ns"), 0o755); err != nil {
		return nil, err
	}
	if err := harness.MakeOutside(w.outside); err != nil {
		return nil, err
	}
	if err := floor.SetIPForward(); err != nil {
		return nil, err
	}
	if err := floor.NewNetns(w.floorHost); err != nil {
		return nil, fmt.Errorf("floor host namespace: %w", err)
	}
	err = sandbox.Do(w.floorHost, func() error {
		if err := floor.SetIPForward(); err != nil {
			return err
		}
		return harness.MakeOutside(w.floorOutside)
	})
	if err != nil {
		return nil, fmt.Errorf("floor host's outside world: %w", err)
	}
	log.Info("starting daemon")
	if w.d, err = harness.StartDaemon(ctx, bin, dir, "--metrics-addr", metricsAddr); err != nil {
		return nil, err
	}
	if err := w.d.ImportBusybox(ctx, image); err != nil {
		return w, err
	}
	return w, nil
}

// setUpBridges creates berth's user network and the floor's bridge.
func (w *world) setUpBridges(ctx context.Context) error {
	if err := w.d.CreateNetwork(ctx, benchNet, benchBridge, benchSubnet); err != nil {
		return fmt.Errorf("create network %q: %w", benchNet, err)
	}
	var err error
	if w.floor, err = floor.New(floor.Config{Bridge: "floor0", Gateway: floorGateway, Table: "floor", HostNS: w.floorHost}); err != nil {
		return fmt.Errorf("floor bridge: %w", err)
	}
	// The bare ports stand in for berth's containers, so they are made as
	// berth makes its endpoints: IPv6 autoconfiguration off.
	fill := floor.Config{Bridge: benchBridge, Gateway: benchGateway, Table: "fill", Existing: true, NoIPv6: true}
	if w.fill, err = floor.New(fill); err != nil {
		return fmt.Errorf("bare ports on %q: %w", benchBridge, err)
	}
	return nil
}

// newNetns returns the path of a fresh bound namespace.
func (w *world) newNetns() (string, error) {
	w.nsSeq++
	p := filepath.Join(w.dir, "ns", fmt.Sprintf("ns%d", w.nsSeq))
	return p, floor.NewNetns(p)
}

// floorEndpoint is a floor endpoint numbered i, its address i after first
// on a /16 and its MAC made from the address (02:42 and the four bytes, as
// Docker once did), so no two endpoints of a run share a MAC.
func floorEndpoint(prefix string, i int, first netip.Addr) floor.Endpoint {
	a := first.As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += uint32(i)
	b := [4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
	return floor.Endpoint{
		HostIf:  fmt.Sprintf("%s%d", prefix, i),
		IfName:  "eth0",
		Address: netip.PrefixFrom(netip.AddrFrom4(b), 16),
		MAC:     net.HardwareAddr{0x02, 0x42, b[0], b[1], b[2], b[3]},
	}
}

// close removes every container, stops the daemon, and deletes the floor's
// bridges and tables; the namespaces die with the bench.
func (w *world) close(ctx context.Context) error {
	var errs []error
	if w.d != nil {
		errs = append(errs, w.d.RemoveAll(ctx), w.d.Stop())
	}
	for _, f := range append([]*floor.Floor{w.fill, w.floor}, w.extra...) {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	err := errors.Join(errs...)
	if err != nil && w.d != nil {
		err = fmt.Errorf("%w (daemon log: %s)", err, w.d.LogPath)
	}
	return err
}

// bridgePorts counts the ports of bridge.
func bridgePorts(bridge string) (int, error) {
	br, err := netlink.LinkByName(bridge)
	if err != nil {
		return 0, err
	}
	links, err := linkList()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index {
			n++
		}
	}
	return n, nil
}

// berthVeths counts the host ends berth owns (alias "berth:…", not bridges).
func berthVeths() (int, error) {
	links, err := linkList()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, l := range links {
		if _, ok := l.(*netlink.Veth); ok && strings.HasPrefix(l.Attrs().Alias, "berth:") {
			n++
		}
	}
	return n, nil
}
