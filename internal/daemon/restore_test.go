package daemon

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/network"
)

// A connect interrupted by a crash leaves the container's record naming a
// network whose endpoint the restart rolled back: that network must go
// from the record, the joined ones and the removed ones stay.
func TestUnjoinedNetworks(t *testing.T) {
	nets := map[string]network.Network{
		"bridge": {ID: "b1", Name: "bridge"},
		"web":    {ID: "w1", Name: "web"},
		"db":     {ID: "d1", Name: "db"},
	}
	lookup := func(ref string) (*network.Network, error) {
		for _, n := range nets {
			if n.Name == ref || n.ID == ref {
				return &n, nil
			}
		}
		return nil, errdefs.NotFound("network %s not found", ref)
	}
	joined := []network.Attachment{{Network: &network.Network{ID: "b1"}}, {Network: &network.Network{ID: "w1"}}}
	req := map[string]container.EndpointRequest{"bridge": {}, "w1": {}, "db": {}, "gone": {}}
	if diff := cmp.Diff([]string{"db"}, unjoinedNetworks(req, joined, lookup)); diff != "" {
		t.Fatal(diff)
	}
}
