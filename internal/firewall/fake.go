package firewall

import (
	"cmp"
	"context"
	"slices"
	"sync"
)

// Fake is an in-memory Firewall for tests of the network core. It validates
// exactly as the real firewall does (through Build), so a controller test
// sees the same errors, and it records every call. The zero value is ready.
type Fake struct {
	mu    sync.Mutex
	nets  map[string]Network
	calls []string
	ports map[PortMapping]bool // fake_ports.go
	// Err, when set, is returned by the next call, which then changes nothing.
	Err error
}

var _ Firewall = (*Fake)(nil)

// NewFake returns an empty fake firewall.
func NewFake() *Fake { return &Fake{nets: map[string]Network{}} }

// Rebuild replaces the recorded networks with nets and the ports with ports.
func (f *Fake) Rebuild(_ context.Context, nets []Network, ports ...PortMapping) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "Rebuild")
	if err := f.takeErr(); err != nil {
		return err
	}
	if err := Validate(nets); err != nil {
		return err
	}
	if err := ValidatePorts(ports); err != nil {
		return err
	}
	f.setPorts(ports)
	f.nets = map[string]Network{}
	for _, n := range nets {
		f.nets[n.Bridge] = n.Masked()
	}
	return nil
}

// AddNetwork records n, replacing a network on the same bridge.
func (f *Fake) AddNetwork(_ context.Context, n Network) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "AddNetwork "+n.Bridge)
	if err := f.takeErr(); err != nil {
		return err
	}
	next := f.others(n.Bridge)
	n = n.Masked()
	if err := Validate(append(next, n)); err != nil {
		return err
	}
	if f.nets == nil {
		f.nets = map[string]Network{}
	}
	f.nets[n.Bridge] = n
	return nil
}

// DelNetwork forgets the network on n's bridge; an unknown one is not an error.
func (f *Fake) DelNetwork(_ context.Context, n Network) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "DelNetwork "+n.Bridge)
	if err := f.takeErr(); err != nil {
		return err
	}
	delete(f.nets, n.Bridge)
	return nil
}

// Networks returns the recorded networks, ordered by bridge.
func (f *Fake) Networks() []Network {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.others("")
}

// Ruleset returns what the real firewall would have in its table now.
func (f *Fake) Ruleset() *Ruleset {
	rs, err := BuildWithPorts(f.Networks(), f.Ports())
	if err != nil {
		panic("fake firewall holds networks Build rejects: " + err.Error())
	}
	return rs
}

// Calls returns the calls made so far, as "Method bridge".
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// others returns the recorded networks except the one on bridge, sorted.
func (f *Fake) others(bridge string) []Network {
	var out []Network
	for br, n := range f.nets {
		if br != bridge {
			out = append(out, n)
		}
	}
	slices.SortFunc(out, func(a, b Network) int { return cmp.Compare(a.Bridge, b.Bridge) })
	return out
}

func (f *Fake) takeErr() error {
	err := f.Err
	f.Err = nil
	return err
}
