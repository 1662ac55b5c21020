package api

import (
	"cmp"
	"slices"
	"strconv"

	ctypes "github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"

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
