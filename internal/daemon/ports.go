package daemon

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/network"
)

// portRequests turns a container's port bindings, and with PublishAllPorts
// every other exposed port, into the requests its first network's endpoint
// publishes. They come in port order, then protocol, then binding order.
func portRequests(cfg container.Config) ([]network.PortRequest, error) {
	var keys []string
	for k, bs := range cfg.PortBindings {
		if len(bs) > 0 {
			keys = append(keys, k)
		}
	}
	if cfg.PublishAllPorts {
		for _, k := range cfg.ExposedPorts {
			if len(cfg.PortBindings[k]) == 0 {
				keys = append(keys, k)
			}
		}
	}
	type key struct {
		port  uint16
		proto string
		raw   string
	}
	parsed := make([]key, 0, len(keys))
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		port, proto, err := container.ParsePortKey(k)
		if err != nil {
			return nil, err
		}
		if !seen[k] {
			seen[k] = true
			parsed = append(parsed, key{port, proto, k})
		}
	}
	slices.SortFunc(parsed, func(a, b key) int { return cmp.Or(cmp.Compare(a.port, b.port), cmp.Compare(a.proto, b.proto)) })
	var out []network.PortRequest
	for _, k := range parsed {
		bindings := cfg.PortBindings[k.raw]
		if len(bindings) == 0 {
			bindings = []container.PortBinding{{}} // -P: an ephemeral port
		}
		for _, b := range bindings {
			start, end, err := container.ParseHostPorts(b.HostPort)
			if err != nil {
				return nil, err
			}
			out = append(out, network.PortRequest{Proto: k.proto, Port: k.port, HostIP: b.HostIP, HostPortStart: start, HostPortEnd: end})
		}
	}
	return out, nil
}

// portsForJoin gives the port requests to the container's first network
// only: Docker publishes on the endpoint that provides the gateway.
func portsForJoin(i int, ports []network.PortRequest) []network.PortRequest {
	if i != 0 {
		return nil
	}
	return ports
}

// checkPorts validates a container's port settings at create time, so that
// a bad one is refused before the container exists.
func checkPorts(cfg container.Config) error {
	if _, err := portRequests(cfg); err != nil {
		return fmt.Errorf("publish ports: %w", err)
	}
	return nil
}
