package bridge

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/network"
)

// Leave removes the endpoint's veth pair; a pair already gone (or already
// leaving) is success, and the sandbox may be gone too.
//
// A synchronous delete costs the caller an RCU barrier (about 20-30 ms
// here). Leave instead cuts the endpoint off at once and leaves the delete
// to the reaper: it sets the host end down, which disables the bridge port
// and takes the carrier from the container's interface before Leave
// returns, and marks it with reapGroup. The reaper deletes marked pairs in
// batches, and a Join that needs one of the names waits for it. Settle
// waits for the reaper. If marking fails, Leave deletes synchronously.
func (d *Driver) Leave(sandboxPath string, spec network.EndpointSpec) error {
	if err := ValidateIfName(spec.HostIfName); err != nil {
		return fmt.Errorf("host interface: %w", err)
	}
	if d.reaper.isPending(spec.HostIfName) {
		return nil
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
	if err := d.markForReaping(host); err != nil {
		d.log.Warn("could not hand veth to the reaper, deleting it now", "veth", spec.HostIfName, "err", err)
		return d.deleteVethIfExists(spec.HostIfName)
	}
	d.reaper.add(spec.HostIfName, sandboxPath, spec.IfName)
	return nil
}

// markForReaping cuts the host end off and puts it in reapGroup.
func (d *Driver) markForReaping(host netlink.Link) error {
	if err := d.step("cut off host end"); err != nil {
		return err
	}
	if err := d.h.LinkSetDown(host); err != nil && !isNotFound(err) {
		return fmt.Errorf("set %q down: %w", host.Attrs().Name, err)
	}
	if err := d.step("mark for reaping"); err != nil {
		return err
	}
	if err := d.h.LinkSetGroup(host, reapGroup); err != nil && !isNotFound(err) {
		return fmt.Errorf("mark %q for deletion: %w", host.Attrs().Name, err)
	}
	return nil
}

// Settle waits until every veth pair that Leave handed to the reaper is
// deleted and every announcement Join started is sent, for callers (and
// tests) that must see the kernel settled.
func (d *Driver) Settle() {
	d.background.Wait()
	d.reaper.settle()
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
