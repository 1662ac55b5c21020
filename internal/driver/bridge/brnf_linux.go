package bridge

import (
	"errors"
	"fmt"
	"os"
)

const (
	bridgeNFPath  = "/proc/sys/net/bridge/bridge-nf-call-iptables"
	bridgeNF6Path = "/proc/sys/net/bridge/bridge-nf-call-ip6tables"
)

// ErrNoBridgeNetfilter says the kernel cannot pass bridged packets through
// the IP hooks (no br_netfilter), so enable_icc=false cannot be enforced.
var ErrNoBridgeNetfilter = errors.New("the kernel has no br_netfilter: traffic between containers on one bridge bypasses the firewall")

// EnableBridgeNetfilter sets net.bridge.bridge-nf-call-iptables=1 and
// bridge-nf-call-ip6tables=1 in the driver's host namespace, so packets
// bridged between two ports of one bridge traverse the inet forward hook,
// IPv6 ones too: enable_icc=false and hairpin NAT depend on it, as in
// Docker (which loads br_netfilter for icc=false, and sets the IPv6 one
// for networks with IPv6: setupIPv6BridgeNetFiltering). The sysctls are
// per network namespace; nothing outside ours changes.
func (d *Driver) EnableBridgeNetfilter() error {
	return d.hostThread.do(func() error {
		if _, err := os.Stat(bridgeNFPath); errors.Is(err, os.ErrNotExist) {
			return ErrNoBridgeNetfilter
		}
		if err := ensureSysctl(bridgeNFPath, "1"); err != nil {
			return fmt.Errorf("enable bridge netfilter: %w", err)
		}
		// Absent on a kernel without IPv6: no IPv6 to filter.
		if err := ensureSysctl(bridgeNF6Path, "1"); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("enable bridge netfilter for IPv6: %w", err)
		}
		return nil
	})
}
