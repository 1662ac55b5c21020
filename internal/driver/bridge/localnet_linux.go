package bridge

// ensureRouteLocalnet sets net.ipv4.conf.<bridge>.route_localnet=1 in the
// driver's host namespace. Published ports DNAT 127.0.0.1:PORT to a
// container; without it the kernel refuses to route a packet with a
// loopback source out of the bridge (it counts as a martian). The firewall
// masquerades such connections to the bridge's address (LOCALHOST PORTS),
// so nothing with a 127/8 source ever reaches a container. netavark and
// CNI's portmap set the same sysctl.
func (d *Driver) ensureRouteLocalnet(bridge string) error {
	path := "/proc/sys/net/ipv4/conf/" + bridge + "/route_localnet"
	return d.hostThread.do(func() error { return ensureSysctl(path, "1") })
}
