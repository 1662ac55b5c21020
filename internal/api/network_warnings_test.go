package api

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestNetworkInspectWarnings: warnings the daemon noticed appear in
// inspect's Warnings field, and a network without any has no such field.
func TestNetworkInspectWarnings(t *testing.T) {
	f := newFakeBackend()
	warn := `route 172.17.0.0/24 dev eth0 overlaps network "bridge" (172.17.0.0/16): remove the route`
	for _, n := range f.networks {
		if n.Name == "bridge" {
			n.Warnings = []string{warn}
		}
	}
	s := newServer(f)
	rec := call(t, s, http.MethodGet, "/networks/bridge", "")
	wantStatus(t, rec, http.StatusOK)
	got := decode[map[string]any](t, rec)
	if diff := cmp.Diff([]any{warn}, got["Warnings"]); diff != "" {
		t.Errorf("Warnings (-want +got):\n%s", diff)
	}
	if got["Name"] != "bridge" || got["IPAM"] == nil {
		t.Errorf("inspect lost Docker's fields: %v", got)
	}
	rec = call(t, s, http.MethodGet, "/networks/web", "")
	if _, ok := decode[map[string]any](t, rec)["Warnings"]; ok {
		t.Errorf("network without warnings has a Warnings field: %s", rec.Body)
	}
}
