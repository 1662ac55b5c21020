package daemon

import (
	"context"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/errdefs"
)

// TestStartRefusedWhileRemoving: a container a docker rm (or its own
// auto-remove) is removing is not started meanwhile, as moby refuses a
// start while RemovalInProgress: the removal would delete it running.
func TestStartRefusedWhileRemoving(t *testing.T) {
	d := &Daemon{}
	cs := &ctrState{c: &container.Container{ID: "0123456789ab", Config: container.Config{}}, removed: make(chan struct{})}
	cs.removing = true
	err := d.startContainer(context.Background(), cs, nil)
	if !errdefs.Is(err, errdefs.KindConflict) || !strings.Contains(err.Error(), "marked for removal") {
		t.Errorf("start while removing: %v, want moby's conflict", err)
	}
}
