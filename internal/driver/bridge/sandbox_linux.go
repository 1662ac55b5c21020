package bridge

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/sandbox"
)

// sandboxConn holds what Join and Leave need inside one sandbox: the
// namespace fd (to create the veth peer straight into it), a netlink
// handle bound to it, and (once the first announcement needs it) a packet
// socket made in it. The driver keeps one per sandbox (see conns) from the
// first Join until ReleaseSandbox: opening them cost every Join a thread
// switching namespaces and back, and every announcement a new thread.
type sandboxConn struct {
	path string
	ns   netns.NsHandle
	h    *netlink.Handle

	raw *routeSocket // a route socket in the sandbox for batched requests (bringUp)
	// conf6 is the sandbox's /proc/sys/net/ipv6/conf, opened inside it
	// and used from any thread (a lookup relative to it stays in the
	// sandbox's namespace); -1 on a kernel without IPv6.
	conf6 int

	mu    sync.Mutex // guards arpFD, loUp and the use of raw
	arpFD int        // AF_PACKET socket in the sandbox; -1 until made
	loUp  bool       // lo has been set up through this conn

	// refs counts callers using the conn; released is set by
	// ReleaseSandbox. Both are guarded by conns.mu; the fds close when
	// released and no caller is left.
	refs     int
	released bool
}

// openSandbox opens the namespace at path, two route-netlink sockets in
// it and its /proc/sys/net/ipv6/conf (all made inside the namespace, used
// from any thread afterwards).
//
// The directory is opened once a conn: a lookup from /proc/sys/net costs
// one comparison per network namespace on the machine (see
// disableHostIPv6), one relative to the directory does not.
func openSandbox(path string) (*sandboxConn, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("open sandbox %q: %w", path, err)
	}
	var h *netlink.Handle
	var raw *routeSocket
	conf6 := -1
	err = sandbox.Do(path, func() error {
		var err error
		if h, err = netlink.NewHandle(unix.NETLINK_ROUTE); err != nil {
			return err
		}
		if raw, err = routeSocketIn(""); err != nil { // the sandbox's: this thread is in it
			h.Close()
			return err
		}
		conf6, err = unix.Open(ipv6ConfPath, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) { // a kernel without IPv6
			conf6, err = -1, nil
		}
		if err != nil {
			h.Close()
			raw.Socket.Close()
			return fmt.Errorf("open %s: %w", ipv6ConfPath, err)
		}
		return nil
	})
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("open netlink in sandbox %q: %w", path, err)
	}
	return &sandboxConn{path: path, ns: ns, h: h, raw: raw, arpFD: -1, conf6: conf6}, nil
}

// disableIPv6 turns IPv6 off on the sandbox's interface ifName, as moby's
// setInterfaceIPv6 does for an interface without an IPv6 address
// (CVE-2024-32473): address generation off (noAddrGen) only stops the
// link-local address, and a neighbour's forged router advertisement
// would still give the interface an address and a default route through
// the neighbour.
func (sb *sandboxConn) disableIPv6(ifName string) error {
	if sb.conf6 < 0 {
		return nil
	}
	return writeSysctlAt(sb.conf6, ifName+"/disable_ipv6", "1")
}

// refuseRouterAdvertisements sets accept_ra=0 on the sandbox's
// interface ifName of a network with IPv6: its address and default route
// are berth's (static, from IPAM), and a neighbour container's forged
// router advertisement would otherwise add a second default route
// through the neighbour and an address of its choosing (Docker leaves
// accept_ra at the kernel's 1 there). An endpoint's own
// net.ipv6.conf.IFNAME.accept_ra, given as a driver option, comes after.
func (sb *sandboxConn) refuseRouterAdvertisements(ifName string) error {
	if sb.conf6 < 0 {
		return nil
	}
	return writeSysctlAt(sb.conf6, ifName+"/accept_ra", "0")
}

func (sb *sandboxConn) close() {
	sb.h.Close()
	sb.raw.Socket.Close()
	if sb.conf6 >= 0 {
		unix.Close(sb.conf6)
	}
	sb.ns.Close()
	if sb.arpFD >= 0 {
		unix.Close(sb.arpFD)
	}
}

// conns caches one sandboxConn per sandbox path. A cached conn holds the
// namespace open, so every sandbox must be released (ReleaseSandbox)
// before its file is unbound, or the namespace and its veth ends would
// outlive the container.
type conns struct {
	mu sync.Mutex
	m  map[string]*sandboxConn
}

// acquire returns the sandbox's conn, opening it on first use; the caller
// must release it.
func (d *Driver) acquire(path string) (*sandboxConn, error) {
	d.conns.mu.Lock()
	if sb, ok := d.conns.m[path]; ok {
		sb.refs++
		d.conns.mu.Unlock()
		return sb, nil
	}
	d.conns.mu.Unlock()
	sb, err := openSandbox(path) // slow: not under the lock
	if err != nil {
		return nil, err
	}
	d.conns.mu.Lock()
	defer d.conns.mu.Unlock()
	if cur, ok := d.conns.m[path]; ok { // another caller opened it meanwhile
		sb.close()
		cur.refs++
		return cur, nil
	}
	if d.conns.m == nil {
		d.conns.m = map[string]*sandboxConn{}
	}
	sb.refs = 1
	d.conns.m[path] = sb
	return sb, nil
}

// release ends one caller's use of sb. With failed set, the conn is taken
// out of the cache (the next caller opens a fresh one): a netlink socket
// that returned an unexpected error may be out of step.
func (d *Driver) release(sb *sandboxConn, failed bool) {
	d.conns.mu.Lock()
	defer d.conns.mu.Unlock()
	if failed && !sb.released && d.conns.m[sb.path] == sb {
		delete(d.conns.m, sb.path)
		sb.released = true
	}
	sb.refs--
	if sb.refs == 0 && sb.released {
		sb.close()
	}
}

// ReleaseSandbox drops the driver's hold on the sandbox at path: its
// conn closes once no Join, Leave or announcement uses it. The controller
// calls it before it deletes a sandbox.
func (d *Driver) ReleaseSandbox(path string) {
	d.conns.mu.Lock()
	defer d.conns.mu.Unlock()
	sb, ok := d.conns.m[path]
	if !ok {
		return
	}
	delete(d.conns.m, path)
	sb.released = true
	if sb.refs == 0 {
		sb.close()
	}
}

// releaseAll drops every cached conn (Close).
func (d *Driver) releaseAll() {
	d.conns.mu.Lock()
	paths := make([]string, 0, len(d.conns.m))
	for p := range d.conns.m {
		paths = append(paths, p)
	}
	d.conns.mu.Unlock()
	for _, p := range paths {
		d.ReleaseSandbox(p)
	}
}

// loopbackIndex is lo's ifindex in every network namespace: the kernel
// registers it first and pins the number (LOOPBACK_IFINDEX).
const loopbackIndex = 1

// ensureLoopbackUp brings lo up: a fresh namespace has it down, and
// programs in the container expect 127.0.0.1 to work. Setting an up link
// up changes nothing, so there is no need to look first.
func (sb *sandboxConn) ensureLoopbackUp() error {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.loUp {
		return nil
	}
	lo := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: loopbackIndex, Name: "lo"}}
	if err := sb.h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	sb.loUp = true
	return nil
}

// sendGratuitousARP announces addr at mac on the link with ifindex in the
// sandbox, so that neighbours that cached the address for an earlier
// container with another MAC (one set by hand) update at once
// instead of after a timeout. The AF_PACKET socket must be made inside the
// sandbox, hence a thread sent there (sandbox.Do), once per sandbox.
func (sb *sandboxConn) sendGratuitousARP(ifindex int, mac net.HardwareAddr, addr netip.Addr) error {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if err := sb.openPacketSocketLocked(); err != nil {
		return err
	}
	to := &unix.SockaddrLinklayer{
		Protocol: htons(unix.ETH_P_ARP),
		Ifindex:  ifindex,
		Halen:    6,
		Addr:     [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	}
	return unix.Sendto(sb.arpFD, garpPayload(mac, addr), 0, to)
}

// sendUnsolicitedNA announces addr, an IPv6 address of the interface at
// ifindex, with mac, to all nodes on the link, through the same packet
// socket as the gratuitous ARP.
func (sb *sandboxConn) sendUnsolicitedNA(ifindex int, mac net.HardwareAddr, addr netip.Addr) error {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if err := sb.openPacketSocketLocked(); err != nil {
		return err
	}
	to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IPV6), Ifindex: ifindex, Halen: 6, Addr: allNodesMAC}
	return unix.Sendto(sb.arpFD, unsolicitedNA(mac, addr), 0, to)
}

// openPacketSocketLocked opens the sandbox's packet socket once (sb.mu held).
func (sb *sandboxConn) openPacketSocketLocked() error {
	if sb.arpFD < 0 {
		err := sandbox.Do(sb.path, func() error {
			// Protocol 0: the socket only sends, so the kernel queues nothing to it.
			fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("open packet socket: %w", err)
			}
			sb.arpFD = fd
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// setSysctls writes an interface's own sysctls in the sandbox, each
// "net.X.Y.IFNAME.Z=V" with IFNAME (or ifname) standing for ifName, as
// libnetwork's osl sets an endpoint's: from a thread sent into the
// sandbox, whose /proc/sys/net is the sandbox's.
func (sb *sandboxConn) setSysctls(ifName string, sysctls []string) error {
	return sandbox.Do(sb.path, func() error {
		for _, s := range sysctls {
			key, value, _ := strings.Cut(s, "=")
			parts := strings.SplitN(key, ".", 5)
			if len(parts) != 5 {
				return fmt.Errorf("sysctl %q: not net.X.Y.IFNAME.Z", key)
			}
			path := filepath.Join("/proc/sys", parts[0], parts[1], parts[2], ifName, strings.ReplaceAll(parts[4], ".", "/"))
			name := strings.Join([]string{parts[0], parts[1], parts[2], ifName, parts[4]}, ".")
			err := os.WriteFile(path, []byte(value), 0)
			if errors.Is(err, fs.ErrNotExist) {
				// Not the OS's words: the docker CLI takes "no such file
				// or directory" for a command missing in the image (127).
				return errdefs.Invalid("sysctl %s does not exist in the container's network namespace", name)
			}
			if err != nil {
				return fmt.Errorf("set sysctl %s=%s: %w", name, value, err)
			}
		}
		return nil
	})
}
