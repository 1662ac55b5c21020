// Package bridge is the kernel side of berth's bridge networks: it creates
// and deletes Linux bridges, joins sandboxes to them with veth pairs
// (addresses, MAC, MTU, default routes, gratuitous ARP) and lists the links and
// routes of the host namespace, all through netlink handles bound to a
// namespace, never by switching a shared thread.
//
// It owns only links it tagged with the ifalias "berth:<owner>" and touches
// nothing else in the host namespace. The sysctls it writes there are
// net.ipv4.ip_forward (EnableIPForwarding), net.ipv6.conf.all.forwarding
// (once a network has IPv6), route_localnet and accept_ra of its own
// bridges, accept_dad and disable_ipv6 of its own IPv6 bridges, and
// disable_ipv6 of its own host veths (through the host's
// ipv6/conf directory, held open: a lookup from /proc/sys compares one
// entry per namespace on the machine); in a sandbox it writes none, and
// turns the container end's IPv6 address generation off by netlink (on a
// network with IPv6 it adds the link-local address itself). A new
// host veth is in a pending interface group (pendingGroup) until it is
// tagged; veths that Leave cut off wait, marked with another group of
// berth's own (reapGroup), for a background reaper that deletes them in
// batches; Settle waits for it. A driver that starts deletes both groups.
//
// Costs that grow with the number of ports on a bridge, measured here with
// BenchmarkJoinLeave and BenchmarkNaiveAttach, and what Join does about them:
// IPv6 on ports (an ff00::/8 route per port, walked whole on every link
// event) is turned off; the gratuitous ARP, flooded to every port, is sent
// only when asked (EndpointSpec.Announce: the controller derives MACs from
// addresses, so a neighbour's cache is rarely wrong) and in the background;
// attaching a port (br_add_if walks every port) is inherent to the kernel.
// A Linux bridge takes at most 1023 ports.
//
// Join makes the host end in two netlink requests (port_linux.go): one
// RTM_NEWLINK creates the pair already attached to the bridge and echoes
// both ifindexes back, one sets alias, group and hairpin; then one sysctl
// write turns its IPv6 off before the container end comes up.
package bridge
