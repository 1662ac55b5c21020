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

// EnableBridgeNetfilter sets net.bridge.bridge-nf-call-iptables=1 in the
// driver's host namespace, so packets bridged between two ports of one
// bridge traverse the inet forward hook: enable_icc=false and hairpin NAT
// depend on it, as in Docker (which loads br_netfilter for icc=false).
// The IPv6 twin is set only once a network has IPv6
// (enableBridgeNetfilter6), as moby's setupIPv6BridgeNetFiltering does:
// set on every host, it would send the bridged IPv6 of everyone's bridges
// (libvirt's, LXD's) through the forward hooks, where a DROP policy of
// ufw or firewalld would stop it. The sysctls are per network namespace;
// nothing outside ours changes.
func (d *Driver) EnableBridgeNetfilter() error {
	return d.hostThread.do(func() error {
		if _, err := os.Stat(bridgeNFPath); errors.Is(err, os.ErrNotExist) {
			return ErrNoBridgeNetfilter
		}
		if err := ensureSysctl(bridgeNFPath, "1"); err != nil {
			return fmt.Errorf("enable bridge netfilter: %w", err)
		}
		return nil
	})
}

// enableBridgeNetfilter6 sets net.bridge.bridge-nf-call-ip6tables=1, for
// a bridge with IPv6 (enable_icc=false must hold for IPv6 too). A kernel
// without br_netfilter or IPv6 has no such file: nothing to do.
func (d *Driver) enableBridgeNetfilter6() error {
	return d.hostThread.do(func() error {
		if err := ensureSysctl(bridgeNF6Path, "1"); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("enable bridge netfilter for IPv6: %w", err)
		}
		return nil
	})
}
