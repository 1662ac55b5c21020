// Package bridge is the kernel side of berth's bridge networks: it creates
// and deletes Linux bridges, joins sandboxes to them with veth pairs
// (address, MAC, MTU, default route, gratuitous ARP) and lists the links and
// routes of the host namespace, all through netlink handles bound to a
// namespace, never by switching a shared thread.
//
// It owns only links it tagged with the ifalias "berth:<owner>" and
// touches nothing else in the host namespace; the only sysctl it writes is
// net.ipv4.ip_forward of the driver's own host namespace.
package bridge
