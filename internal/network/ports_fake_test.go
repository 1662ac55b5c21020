package network

import (
	"context"
	"net/netip"
	"slices"

	"github.com/berth-net/berth/internal/firewall"
)

// fakeFirewall's published ports: validated as the real firewall does.

func (f *fakeFirewall) AddPorts(_ context.Context, ps []firewall.PortMapping) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failAdd; err != nil {
		f.failAdd = nil
		return err
	}
	var all []firewall.PortMapping
	for m := range f.ports {
		all = append(all, m)
	}
	seen := map[firewall.PortMapping]bool{}
	var fresh []firewall.PortMapping
	for _, m := range ps {
		if m = anyIPZero(m); !f.ports[m] && !seen[m] {
			seen[m] = true
			fresh = append(fresh, m)
		}
	}
	if err := firewall.ValidatePorts(append(all, fresh...)); err != nil {
		return err
	}
	if f.ports == nil {
		f.ports = map[firewall.PortMapping]bool{}
	}
	for _, m := range fresh {
		f.ports[m] = true
	}
	return nil
}

func (f *fakeFirewall) DelPorts(_ context.Context, ps []firewall.PortMapping) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failDel != nil {
		if f.failDelSkip == 0 {
			err := f.failDel
			f.failDel = nil
			return err
		}
		f.failDelSkip--
	}
	for _, m := range ps {
		delete(f.ports, anyIPZero(m))
	}
	return nil
}

func (f *fakeFirewall) setPortsLocked(ps []firewall.PortMapping) {
	f.ports = map[firewall.PortMapping]bool{}
	for _, m := range ps {
		f.ports[anyIPZero(m)] = true
	}
}

// portList returns the published ports, sorted by host port.
func (f *fakeFirewall) portList() []firewall.PortMapping {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []firewall.PortMapping
	for m := range f.ports {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b firewall.PortMapping) int { return int(a.HostPort) - int(b.HostPort) })
	return out
}

func anyIPZero(m firewall.PortMapping) firewall.PortMapping {
	if m.AnyHostIP() {
		m.HostIP = netip.Addr{}
	}
	return m
}
