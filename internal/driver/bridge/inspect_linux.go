package bridge

import (
	"fmt"
	"net"

	"github.com/berth-net/berth/internal/errdefs"
)

// LinkMAC returns the MAC of a link in the host namespace (a bridge or a
// host end), for callers that report it (berth-cni's result).
func (d *Driver) LinkMAC(name string) (net.HardwareAddr, error) {
	l, err := d.h.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("look up %q: %w", name, err)
	}
	return l.Attrs().HardwareAddr, nil
}

// CheckPort reports what is wrong with host end hostIfName as a port of
// bridge br: missing, not a veth, not on the bridge, or down.
func (d *Driver) CheckPort(br, hostIfName string) error {
	b, err := linkIfExists(d.h, br)
	if err != nil {
		return err
	}
	if b == nil {
		return errdefs.NotFound("bridge %q does not exist", br)
	}
	l, err := linkIfExists(d.h, hostIfName)
	if err != nil {
		return err
	}
	switch {
	case l == nil:
		return errdefs.NotFound("veth %q does not exist", hostIfName)
	case l.Type() != "veth":
		return errdefs.Conflict("link %q is a %s, not a veth", hostIfName, l.Type())
	case l.Attrs().MasterIndex != b.Attrs().Index:
		return errdefs.Conflict("veth %q is not a port of bridge %q", hostIfName, br)
	case l.Attrs().Flags&net.FlagUp == 0:
		return errdefs.Conflict("veth %q is down", hostIfName)
	}
	return nil
}
