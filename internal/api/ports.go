package api

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"

	ctypes "github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/network"
)

func portSet(ports []string) nat.PortSet {
	if len(ports) == 0 {
		return nil
	}
	ps := nat.PortSet{}
	for _, p := range ports {
		ps[nat.Port(p)] = struct{}{}
	}
	return ps
}

// published lists the ports the container's endpoints publish, in a stable order.
func published(atts []network.Attachment) []network.PortMapping {
	var out []network.PortMapping
	for _, a := range atts {
		if a.Endpoint != nil {
			out = append(out, a.Endpoint.Ports...)
		}
	}
	slices.SortFunc(out, func(a, b network.PortMapping) int {
		return cmp.Or(cmp.Compare(a.Port, b.Port), cmp.Compare(a.Proto, b.Proto),
			a.HostIP.Compare(b.HostIP), cmp.Compare(a.HostPort, b.HostPort))
	})
	return out
}

func portKey(port uint16, proto string) nat.Port {
	return nat.Port(strconv.Itoa(int(port)) + "/" + proto)
}

// portMap is NetworkSettings.Ports: every exposed port, null when it is
// not published, else where it is published on the host.
func portMap(exposed []string, atts []network.Attachment) nat.PortMap {
	pm := nat.PortMap{}
	for _, p := range exposed {
		pm[nat.Port(p)] = nil
	}
	for _, m := range published(atts) {
		k := portKey(m.Port, m.Proto)
		pm[k] = append(pm[k], nat.PortBinding{HostIP: addrString(m.HostIP), HostPort: strconv.Itoa(int(m.HostPort))})
	}
	return pm
}

// summaryPorts is docker ps's PORTS: published ports with their host side,
// then exposed ones that are not published.
func summaryPorts(exposed []string, atts []network.Attachment) []ctypes.Port {
	out := []ctypes.Port{}
	seen := map[nat.Port]bool{}
	for _, m := range published(atts) {
		seen[portKey(m.Port, m.Proto)] = true
		out = append(out, ctypes.Port{IP: addrString(m.HostIP), PrivatePort: m.Port, PublicPort: m.HostPort, Type: m.Proto})
	}
	for _, p := range exposed {
		np := nat.Port(p)
		if !seen[np] {
			out = append(out, ctypes.Port{PrivatePort: uint16(np.Int()), Type: np.Proto()})
		}
	}
	return out
}

// portBindings checks HostConfig.PortBindings at the edge: "PORT/PROTO"
// keys with tcp or udp, IPv4 host addresses, and host ports that are empty
// (ephemeral), a port or a range. The core resolves and holds them.
func portBindings(pm nat.PortMap) (map[string][]container.PortBinding, error) {
	if !hasBindings(pm) {
		return nil, nil
	}
	out := make(map[string][]container.PortBinding, len(pm))
	for key, bindings := range pm {
		port, proto, err := container.ParsePortKey(string(key))
		if err != nil {
			return nil, err
		}
		k := string(portKey(port, proto))
		for _, b := range bindings {
			pb, err := portBinding(b)
			if err != nil {
				return nil, err
			}
			out[k] = append(out[k], pb)
		}
	}
	return out, nil
}

func portBinding(b nat.PortBinding) (container.PortBinding, error) {
	var pb container.PortBinding
	if b.HostIP != "" {
		ip, err := netip.ParseAddr(b.HostIP)
		if err != nil {
			return pb, errdefs.Invalid("invalid host IP %q to publish on", b.HostIP)
		}
		if ip.Zone() != "" {
			return pb, errdefs.Invalid("invalid host IP %q to publish on: a zoned address", b.HostIP)
		}
		pb.HostIP = ip.Unmap()
	}
	if _, _, err := container.ParseHostPorts(b.HostPort); err != nil {
		return pb, err
	}
	pb.HostPort = b.HostPort
	return pb, nil
}

// hostPortBindings echoes the request in HostConfig.PortBindings.
func hostPortBindings(pbs map[string][]container.PortBinding) nat.PortMap {
	pm := nat.PortMap{}
	for k, bs := range pbs {
		for _, b := range bs {
			pm[nat.Port(k)] = append(pm[nat.Port(k)], nat.PortBinding{HostIP: addrString(b.HostIP), HostPort: b.HostPort})
		}
	}
	return pm
}
