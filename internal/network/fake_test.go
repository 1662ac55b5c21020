package network

import (
	"context"
	"maps"
	"slices"

	"errors"
	"fmt"
	"github.com/berth-net/berth/internal/firewall"
	"net/netip"
	"sort"
	"strings"
	"sync"
)

// fakeDriver keeps "kernel" links in maps, so the controller's ordering,
// rollback and reconcile logic is tested without root.
type fakeDriver struct {
	mu       sync.Mutex
	bridges  map[string]BridgeSpec
	veths    map[string]EndpointSpec // by host ifname
	owners   map[string]string       // link → owner tag
	routes   []netip.Prefix
	failJoin error
	// duringJoin, if set, runs inside Join before it makes the pair.
	duringJoin func(spec EndpointSpec)
	released   []string // sandbox paths ReleaseSandbox was called for
	adopted    []string // host ends Adopt found
	gateways   []string // SetGateway calls: "eth1 via 172.17.0.1"
	deleted    []string // bridges DeleteBridge deleted
	// foreign are links of the host's that are not berth's (an
	// administrator's bridge), for LinkExists.
	foreign map[string]bool
	// failEnsure, if set, is EnsureBridge's error (a start cut off
	// before the kernel work).
	failEnsure error
	// failDelete, if set, is DeleteBridge's error once.
	failDelete error
	// releasedBridges are bridges ReleaseBridge untagged.
	releasedBridges []string
	// foreignPorts are links not berth's on a bridge, by its name;
	// portCounts how many times ForeignPorts counted them.
	foreignPorts map[string]int
	portCounts   int
}

func newFakeDriver() *fakeDriver {
	return &fakeDriver{bridges: map[string]BridgeSpec{}, veths: map[string]EndpointSpec{}, owners: map[string]string{}}
}

func (d *fakeDriver) EnsureBridge(spec BridgeSpec, owner string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if o, ok := d.owners[spec.Name]; ok && o != owner {
		return fmt.Errorf("bridge %q is already in use (alias %q)", spec.Name, o)
	}
	if d.failEnsure != nil {
		return d.failEnsure
	}
	d.bridges[spec.Name] = spec
	d.owners[spec.Name] = owner
	return nil
}

func (d *fakeDriver) LinkExists(name string) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ours := d.bridges[name]
	return ours || d.foreign[name], nil
}

// ReleaseBridge is the bridge driver's: a bridge berth made (not one of
// foreign) with no port of another's is deleted; another is untagged.
func (d *fakeDriver) ReleaseBridge(name string) error {
	d.mu.Lock()
	made := !d.foreign[name] && d.foreignPorts[name] == 0
	d.mu.Unlock()
	if made {
		return d.DeleteBridge(name)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.owners, name)
	d.releasedBridges = append(d.releasedBridges, name)
	return nil
}

func (d *fakeDriver) DeleteBridge(name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.failDelete; err != nil {
		d.failDelete = nil
		return err
	}
	for _, v := range d.veths {
		if v.Bridge == name {
			return fmt.Errorf("bridge %q still has port %q", name, v.HostIfName)
		}
	}
	delete(d.bridges, name)
	delete(d.owners, name)
	d.deleted = append(d.deleted, name)
	return nil
}

func (d *fakeDriver) Join(sandboxPath string, spec EndpointSpec) error {
	if d.duringJoin != nil {
		d.duringJoin(spec)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failJoin != nil {
		return d.failJoin
	}
	if _, ok := d.bridges[spec.Bridge]; !ok {
		return &NoBridgeError{Name: spec.Bridge}
	}
	if _, ok := d.veths[spec.HostIfName]; ok {
		if d.owners[spec.HostIfName] == spec.Owner {
			return nil // the endpoint's own pair: Join is idempotent, as the bridge driver's
		}
		return errors.New("file exists")
	}
	d.veths[spec.HostIfName] = spec
	d.owners[spec.HostIfName] = spec.Owner
	return nil
}

func (d *fakeDriver) Leave(sandboxPath string, spec EndpointSpec) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.veths, spec.HostIfName)
	delete(d.owners, spec.HostIfName)
	return nil
}

func (d *fakeDriver) ReleaseSandbox(sandboxPath string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.released = append(d.released, sandboxPath)
}

func (d *fakeDriver) OwnedLinks() ([]OwnedLink, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []OwnedLink
	for name, o := range d.owners {
		out = append(out, OwnedLink{Name: name, Owner: o, ForeignPorts: d.foreignPorts[name]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (d *fakeDriver) OwnedBridges() ([]OwnedLink, error) {
	links, err := d.OwnedLinks()
	var out []OwnedLink
	for _, l := range links {
		if strings.HasPrefix(l.Owner, "network:") {
			l.ForeignPorts = -1
			out = append(out, l)
		}
	}
	return out, err
}

func (d *fakeDriver) ForeignPorts() (map[string]int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.portCounts++
	return maps.Clone(d.foreignPorts), nil
}

func (d *fakeDriver) SetGateway(sandboxPath string, spec EndpointSpec) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if spec.Gateway.IsValid() {
		d.gateways = append(d.gateways, spec.IfName+" via "+spec.Gateway.String())
	}
	if spec.Gateway6.IsValid() {
		d.gateways = append(d.gateways, spec.IfName+" via "+spec.Gateway6.String())
	}
	return nil
}

func (d *fakeDriver) Adopt(sandboxPath string, spec EndpointSpec) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.owners[spec.HostIfName]
	if ok {
		d.adopted = append(d.adopted, spec.HostIfName)
	}
	return ok, nil
}

// HostRoutes are the routes set by the test and, as the kernel has
// them, the subnet route of each bridge's IPv4 gateway.
func (d *fakeDriver) HostRoutes() ([]netip.Prefix, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := slices.Clone(d.routes)
	for _, b := range d.bridges {
		if b.Gateway.IsValid() {
			out = append(out, b.Gateway.Masked())
		}
	}
	return out, nil
}

func (d *fakeDriver) vethNames() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for n := range d.veths {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// fakeSandboxes keeps namespaces as a set of IDs.
type fakeSandboxes struct {
	mu  sync.Mutex
	ids map[string]bool
}

func newFakeSandboxes() *fakeSandboxes { return &fakeSandboxes{ids: map[string]bool{}} }

func (s *fakeSandboxes) Create(id string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids[id] = true
	return s.Path(id), nil
}

func (s *fakeSandboxes) Delete(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.ids, id)
	return nil
}

func (s *fakeSandboxes) List() ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id := range s.ids {
		out = append(out, id)
	}
	sort.Strings(out)
	return out, nil
}

func (s *fakeSandboxes) Path(id string) string { return "/run/berth/netns/" + id }

// seqIDs returns deterministic 64-hex IDs whose 12-character prefixes differ:
// "0001" sixteen times, then "0002" sixteen times, …
func seqIDs() func() string {
	var mu sync.Mutex
	n := 0
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		n++
		return strings.Repeat(fmt.Sprintf("%04x", n), 16)
	}
}

// fakeFirewall records the networks that have rules.
type fakeFirewall struct {
	mu    sync.Mutex
	nets  map[string]firewall.Network
	ports map[firewall.PortMapping]bool // ports_fake_test.go
	// failAdd, if set, is the error of the next AddPorts, once.
	failAdd error
	// failDel, if set, is the error of a DelPorts, once: the one after
	// failDelSkip more calls.
	failDel     error
	failDelSkip int
}

func newFakeFirewall() *fakeFirewall { return &fakeFirewall{nets: map[string]firewall.Network{}} }

func (f *fakeFirewall) Rebuild(_ context.Context, nets []firewall.Network, ports ...firewall.PortMapping) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setPortsLocked(ports)
	f.nets = map[string]firewall.Network{}
	for _, n := range nets {
		f.nets[n.Bridge] = n
	}
	return nil
}

func (f *fakeFirewall) AddNetwork(_ context.Context, n firewall.Network) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nets[n.Bridge] = n
	return nil
}

func (f *fakeFirewall) DelNetwork(_ context.Context, n firewall.Network) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.nets, n.Bridge)
	return nil
}

func (f *fakeFirewall) has(bridge string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.nets[bridge]
	return ok
}
