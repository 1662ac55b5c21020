package bridge

import (
	"errors"
	"fmt"
	"os"
)

// ensureNoRouterAdvertisements sets net.ipv6.conf.<bridge>.accept_ra=0,
// on every bridge, IPv6 or not. A container needs only CAP_NET_RAW (in
// Docker's default set) to forge a router advertisement, and a bridge
// that took one would give the host a default route through that
// container (CVE-2020-13401); Docker sets the same on its bridges
// (setupDefaultSysctl). IPv6 forwarding does not make it moot: at
// accept_ra=2, which hosts that forward set to keep SLAAC and which a new
// bridge inherits from default.accept_ra, the kernel takes them anyway.
// A kernel without IPv6, or a bridge without it (an MTU below 1280: no
// such file), has nothing to take them with.
func (d *Driver) ensureNoRouterAdvertisements(bridge string) error {
	if d.ipv6Conf < 0 {
		return nil
	}
	err := d.hostThread.do(func() error {
		_, err := ensureSysctlAt(d.ipv6Conf, bridge+"/accept_ra", "0")
		return err
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("stop bridge %q taking router advertisements: %w", bridge, err)
	}
	return nil
}
