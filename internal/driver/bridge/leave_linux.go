package bridge

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/network"
	"github.com/berth-net/berth/internal/sandbox"
)

// Leave removes the endpoint's veth pair; a pair already gone is success,
// and the sandbox may be gone too.
//
// Deleting a veth makes the caller wait for an RCU barrier in
// netdev_run_todo (about 30 ms on these machines), while a namespace being
// destroyed takes its devices with it in the kernel's cleanup worker. So
// Leave moves both ends into a fresh, unreferenced "graveyard" namespace
// and closes it: when Leave returns, neither the host nor the sandbox has
// the links any more (the name eth0 is free again, the bridge port is
// gone), and the kernel frees them in the background. Nothing can leak:
// the only reference to the graveyard is the fd Leave holds, which the
// kernel drops even if the daemon dies in between. If a move fails, Leave
// falls back to a plain delete.
func (d *Driver) Leave(sandboxPath string, spec network.EndpointSpec) error {
	if err := ValidateIfName(spec.HostIfName); err != nil {
		return fmt.Errorf("host interface: %w", err)
	}
	host, err := linkIfExists(d.h, spec.HostIfName)
	if err != nil || host == nil {
		return err
	}
	if err := checkOwnHostEnd(host, spec.Owner); err != nil {
		if errors.Is(err, errOtherEndpoint) {
			d.log.Warn("not removing veth of another endpoint", "veth", spec.HostIfName, "err", err)
			return nil
		}
		return err
	}
	gy, err := newGraveyard()
	if err != nil {
		d.log.Warn("no graveyard namespace, deleting veth synchronously", "veth", spec.HostIfName, "err", err)
		return d.deleteVethIfExists(spec.HostIfName)
	}
	defer unix.Close(gy)
	if err := d.buryPeer(sandboxPath, spec.IfName, host, gy); err != nil {
		d.log.Warn("could not move container end away, deleting veth synchronously", "veth", spec.HostIfName, "err", err)
		return d.deleteVethIfExists(spec.HostIfName)
	}
	if err := d.h.LinkSetNsFd(host, gy); err != nil && !isNotFound(err) {
		d.log.Warn("could not move host end away, deleting veth synchronously", "veth", spec.HostIfName, "err", err)
		return d.deleteVethIfExists(spec.HostIfName)
	}
	return nil
}

// errOtherEndpoint marks a host link that another endpoint now owns.
var errOtherEndpoint = errors.New("link belongs to another endpoint")

// checkOwnHostEnd makes sure Leave only ever removes this endpoint's veth.
// An untagged veth counts as ours: a crash between creating the pair and
// tagging it leaves exactly that, and the rollback must remove it.
func checkOwnHostEnd(host netlink.Link, owner string) error {
	name, alias := host.Attrs().Name, host.Attrs().Alias
	if _, ok := host.(*netlink.Veth); !ok {
		return errdefs.Conflict("link %q is a %s, not a veth; not deleting it", name, host.Type())
	}
	if alias == "" || owner == "" || alias == ownerAlias(owner) {
		return nil
	}
	if _, ok := ownerFromAlias(alias); ok {
		return fmt.Errorf("veth %q is tagged %q, not %q: %w", name, alias, ownerAlias(owner), errOtherEndpoint)
	}
	return errdefs.Conflict("veth %q is not berth's (alias %q); not deleting it", name, alias)
}

// buryPeer moves the container end of host out of the sandbox into the
// graveyard. A sandbox that is gone, or no longer holds the peer, leaves
// nothing to move: the host end alone takes the pair with it.
func (d *Driver) buryPeer(sandboxPath, ifName string, host netlink.Link, gy int) error {
	if ifName == "" || !sandbox.IsNamespace(sandboxPath) {
		return nil
	}
	if err := ValidateIfName(ifName); err != nil {
		return fmt.Errorf("container interface: %w", err)
	}
	sb, err := openSandbox(sandboxPath, false)
	if err != nil {
		return err
	}
	defer sb.close()
	peer, err := linkIfExists(sb.h, ifName)
	if err != nil || !isPeerOf(peer, host) {
		return err
	}
	if err := sb.h.LinkSetNsFd(peer, gy); err != nil && !isNotFound(err) {
		return fmt.Errorf("move %q out of sandbox %q: %w", ifName, sandboxPath, err)
	}
	return nil
}

// newGraveyard returns an fd for a new, empty network namespace that nothing
// else references. It is made on a thread that exits still locked, so the
// runtime discards the thread rather than reuse it in the wrong namespace.
func newGraveyard() (int, error) {
	type result struct {
		fd  int
		err error
	}
	res := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			res <- result{-1, fmt.Errorf("unshare network namespace: %w", err)}
			return
		}
		fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			err = fmt.Errorf("open new network namespace: %w", err)
		}
		res <- result{fd, err}
	}()
	r := <-res
	return r.fd, r.err
}
