package network

import (
	"sort"
	"sync/atomic"
)

// netView is an immutable, sorted copy of the networks, published after
// every change under c.mu. Listing and inspecting networks read it without
// the lock: a writer holds c.mu across store writes, which queue behind
// every other writer of the same bbolt file, and `network ls` must stay
// quick while a hundred containers start (issue 7).
type netView struct {
	p atomic.Pointer[[]*Network]
}

// publishNetworksLocked refreshes the view; call it with c.mu held after
// changing c.networks or a network in it.
func (c *Controller) publishNetworksLocked() {
	out := make([]*Network, 0, len(c.networks))
	for _, n := range c.networks {
		out = append(out, cloneNetwork(n))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	c.view.p.Store(&out)
}

// viewNetworks returns the published networks (shared: clone before handing out).
func (c *Controller) viewNetworks() []*Network {
	if p := c.view.p.Load(); p != nil {
		return *p
	}
	return nil
}

// loaded reports whether Start has loaded the records (and published them).
func (c *Controller) loaded() bool { return c.view.p.Load() != nil }

// lookupView finds a network as lookupNetwork does, in the published view.
func (c *Controller) lookupView(ref string) (*Network, error) {
	nets := c.viewNetworks()
	m := make(map[string]*Network, len(nets))
	for _, n := range nets {
		m[n.ID] = n
	}
	return lookupIn(m, ref)
}
