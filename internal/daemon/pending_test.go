package daemon

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/store"
	"github.com/berth-net/berth/internal/volume"
)

// A create copying an image's files into its volumes runs without d.mu,
// pending: its name is taken (for other creates, generated names and
// renames) and its volumes are in use (no removal takes them), and a
// second create of the same new volume waits for the first one's copy
// rather than filling the volume beside it.
func TestPendingCreateHoldsNameAndVolumes(t *testing.T) {
	vols, err := volume.NewStore(t.TempDir(), store.NewMemory())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vols.Create("data", nil); err != nil {
		t.Fatal(err)
	}
	d := &Daemon{containers: map[string]*ctrState{}, pending: map[string]*container.Container{}, copying: map[string]chan struct{}{}, volumes: vols}
	mount := container.Mount{Type: container.MountVolume, Source: "data", Destination: "/etc"}
	web := &container.Container{ID: "aaaa1111bbbb", Name: "web", Config: container.Config{Mounts: []container.Mount{mount}}}

	d.mu.Lock()
	copies := d.claimCopyUpsLocked(web.Config)
	d.pending[web.ID] = web
	d.mu.Unlock()
	if len(copies) != 1 || copies[0].Source != "data" {
		t.Fatalf("copies %v, want the empty volume data", copies)
	}

	d.mu.Lock()
	if c := d.nameHolderLocked("web"); c != web {
		t.Errorf("the pending create's name is free: %v", c)
	}
	if users := d.volumeUsersLocked("data"); !slices.Equal(users, []string{web.ID}) {
		t.Errorf("users of data %v, want the pending create", users)
	}
	d.mu.Unlock()
	if _, err := d.forgetUnused("data"); err == nil {
		t.Error("a volume a pending create fills was removed")
	}

	// A second create of data waits for the first's copy, then finds the
	// volume filled and copies nothing.
	second := make(chan []container.Mount)
	go func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		second <- d.claimCopyUpsLocked(container.Config{Mounts: []container.Mount{mount}})
	}()
	select {
	case got := <-second:
		t.Fatalf("a second create claimed %v while the first was filling the volume", got)
	case <-time.After(200 * time.Millisecond):
	}
	if err := os.WriteFile(filepath.Join(vols.Mountpoint("data"), "passwd"), []byte("root\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	delete(d.pending, web.ID)
	d.releaseCopyUpsLocked(copies)
	d.mu.Unlock()
	select {
	case got := <-second:
		if len(got) != 0 {
			t.Errorf("the second create copies into a filled volume: %v", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second create still waits after the first's copy ended")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if c := d.nameHolderLocked("web"); c != nil {
		t.Errorf("the name is still held after the create ended: %v", c)
	}
}
