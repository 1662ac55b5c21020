package firewall

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
)

// AddPorts records ps; mappings already recorded are kept, and a host port
// claimed twice is a conflict, as in the real firewall.
func (f *Fake) AddPorts(_ context.Context, ps []PortMapping) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("AddPorts %d", len(ps)))
	if err := f.takeErr(); err != nil {
		return err
	}
	seen := map[PortMapping]bool{}
	var fresh []PortMapping
	for _, m := range ps {
		if m = fakeNormalPort(m); !f.ports[m] && !seen[m] {
			seen[m] = true
			fresh = append(fresh, m)
		}
	}
	if err := ValidatePorts(append(f.portList(), fresh...)); err != nil {
		return err
	}
	if f.ports == nil {
		f.ports = map[PortMapping]bool{}
	}
	for _, m := range fresh {
		f.ports[m] = true
	}
	return nil
}

// DelPorts forgets ps; unknown mappings are not an error.
func (f *Fake) DelPorts(_ context.Context, ps []PortMapping) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("DelPorts %d", len(ps)))
	if err := f.takeErr(); err != nil {
		return err
	}
	for _, m := range ps {
		delete(f.ports, fakeNormalPort(m))
	}
	return nil
}

// Ports returns the recorded mappings, sorted as the map elements are.
func (f *Fake) Ports() []PortMapping {
	f.mu.Lock()
	defer f.mu.Unlock()
	ps := f.portList()
	slices.SortFunc(ps, func(a, b PortMapping) int {
		return compareElements(Element{Map: a.mapName(), Port: a}, Element{Map: b.mapName(), Port: b})
	})
	return ps
}

func (f *Fake) setPorts(ps []PortMapping) {
	f.ports = make(map[PortMapping]bool, len(ps))
	for _, m := range ps {
		f.ports[fakeNormalPort(m)] = true
	}
}

func (f *Fake) portList() []PortMapping {
	out := make([]PortMapping, 0, len(f.ports))
	for m := range f.ports {
		out = append(out, m)
	}
	return out
}

func fakeNormalPort(m PortMapping) PortMapping {
	if m.AnyHostIP() {
		m.HostIP = netip.Addr{}
	}
	return m
}
