package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/runtime/image"
	"github.com/berth-net/berth/internal/store"
	"github.com/berth-net/berth/internal/volume"
)

// A create copying an image's files into its volumes runs without d.mu,
// pending: its name is taken (for other creates, generated names and
// renames) and its volumes are in use (no removal takes them), and a
// second create of the same new volume waits for the first one's copy
// rather than filling the volume beside it.
func TestPendingCreateHoldsNameAndVolumes(t *testing.T) {
	d, vols := volumesDaemon(t, "data")
	mount := container.Mount{Type: container.MountVolume, Source: "data", Destination: "/etc"}
	web := &container.Container{ID: "aaaa1111bbbb", Name: "web", Config: container.Config{Mounts: []container.Mount{mount}}}

	d.mu.Lock()
	copies := d.claimCopyUpsLocked(web.Config)
	d.pending[web.ID] = web
	d.mu.Unlock()
	if len(copies) != 1 || copies[0].Source != "data" {
		t.Fatalf("copies %v, want the empty volume data", copies)
	}

	wantHeld(t, d, web, "data")
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

// A create that waits for another create's copy into a volume they share
// is pending while it waits: its name and its own new volumes are held
// (they were free, and a prune took the volume under it).
func TestCreateWaitingForACopyHoldsItsNameAndVolumes(t *testing.T) {
	d, vols := volumesDaemon(t, "shared", "mine")
	rootfs := t.TempDir()
	if err := os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "etc", "passwd"), []byte("root\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := &image.Image{RootfsDir: rootfs}
	shared := container.Mount{Type: container.MountVolume, Source: "shared", Destination: "/etc"}
	// A is filling shared.
	d.mu.Lock()
	aCopies := d.claimCopyUpsLocked(container.Config{Mounts: []container.Mount{shared}})
	d.mu.Unlock()

	b := &container.Container{ID: "bbbb2222cccc", Name: "web", Config: container.Config{Mounts: []container.Mount{
		shared, {Type: container.MountVolume, Source: "mine", Destination: "/etc"}}}}
	done := make(chan error, 1)
	go func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		done <- d.copyUpLocked(b, img)
	}()
	waitPending(t, d, b.ID, "B never became pending")
	wantHeld(t, d, b, "mine")
	// A's copy ends; B copies what is still empty (its own volume).
	if err := os.WriteFile(filepath.Join(vols.Mountpoint("shared"), "passwd"), []byte("root\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	d.releaseCopyUpsLocked(aCopies)
	d.mu.Unlock()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("B still waits after A's copy")
	}
	if _, err := os.Stat(filepath.Join(vols.Mountpoint("mine"), "passwd")); err != nil {
		t.Errorf("B's own volume was not filled: %v", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.pending) != 0 || len(d.copying) != 0 {
		t.Errorf("after the copies: pending %v, copying %v", d.pending, d.copying)
	}
}

// A listing never waits on a container whose lock an operation holds: it
// shows the copy the last listing took (as moby's ps reads its replica).
func TestListingDoesNotWaitOnABusyContainer(t *testing.T) {
	cs := newCtrState(&container.Container{ID: "cccc3333dddd", Name: "busy", State: container.State{Status: container.StatusCreated}})
	if v := cs.listView(); v.Name != "busy" || v.State.Status != container.StatusCreated {
		t.Fatalf("first listing: %+v", v)
	}
	cs.mu.Lock() // a start in progress
	cs.c.State.Status = container.StatusRunning
	got := make(chan *container.Container, 1)
	go func() { got <- cs.listView() }()
	select {
	case v := <-got:
		if v.State.Status != container.StatusCreated {
			t.Errorf("while busy: status %q, want the last listing's", v.State.Status)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a listing waited on the container's lock")
	}
	cs.mu.Unlock()
	if v := cs.listView(); v.State.Status != container.StatusRunning {
		t.Errorf("once free: status %q, want running", v.State.Status)
	}
}

// TestListingKeepsAnUnchangedCopy: a container that has not changed
// since the last listing is listed with the same copy (not decoded
// again); one that changed gets a new copy, and the old one is left as
// it was (listings share copies: they are read only).
func TestListingKeepsAnUnchangedCopy(t *testing.T) {
	cs := newCtrState(&container.Container{ID: "eeee5555ffff", Name: "idle", State: container.State{Status: container.StatusCreated}})
	first := cs.listView()
	if again := cs.listView(); again != first {
		t.Error("an unchanged container got a new copy")
	}
	cs.mu.Lock()
	cs.c.State.Status = container.StatusRunning
	cs.mu.Unlock()
	changed := cs.listView()
	if changed == first || changed.State.Status != container.StatusRunning || first.State.Status != container.StatusCreated {
		t.Errorf("after a change: same copy %v, status %q (the old copy's %q)", changed == first, changed.State.Status, first.State.Status)
	}
}

// volumesDaemon is a daemon with a volume store holding the volumes named.
func volumesDaemon(t *testing.T, volumes ...string) (*Daemon, *volume.Store) {
	t.Helper()
	vols, err := volume.NewStore(t.TempDir(), store.NewMemory())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range volumes {
		if _, err := vols.Create(v, nil); err != nil {
			t.Fatal(err)
		}
	}
	return &Daemon{containers: map[string]*ctrState{}, pending: map[string]*container.Container{}, copying: map[string]chan struct{}{}, volumes: vols}, vols
}

// waitPending waits until the create of id is pending (and d.mu free to
// see it), or fails with why after 10 s.
func waitPending(t *testing.T, d *Daemon, id, why string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d.mu.Lock()
		_, pending := d.pending[id]
		d.mu.Unlock()
		if pending {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(why)
		}
		time.Sleep(time.Millisecond)
	}
}

// wantHeld checks that the pending create c holds its name and the
// volume named (its only user).
func wantHeld(t *testing.T, d *Daemon, c *container.Container, vol string) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if h := d.nameHolderLocked(c.Name); h != c {
		t.Errorf("pending create %s: its name is held by %v", c.ID, h)
	}
	if users := d.volumeUsersLocked(vol); !slices.Equal(users, []string{c.ID}) {
		t.Errorf("pending create %s: users of %s %v, want it alone", c.ID, vol, users)
	}
}

// slowStore is a store whose Records reach the disk only when the test
// lets them (release), or fail with failWith.
type slowStore struct {
	store.Store
	release  chan struct{}
	failWith error
}

type slowDurable struct{ s *slowStore }

func (d slowDurable) Wait() error {
	<-d.s.release
	return d.s.failWith
}

func (s *slowStore) Record(fn func(store.Tx) error) (store.Durable, error) {
	if _, err := s.Store.Record(fn); err != nil {
		return nil, err
	}
	return slowDurable{s}, nil
}

// A create's record reaches the disk without d.mu, the create pending
// meanwhile: lookups go on, and its name and volumes stay held; a failed
// sync gives the create its error and lets the name go.
func TestCreateWaitsForItsRecordWithoutTheLock(t *testing.T) {
	for _, fail := range []bool{false, true} {
		t.Run(fmt.Sprintf("fail=%v", fail), func(t *testing.T) {
			d, _ := volumesDaemon(t, "data")
			st := &slowStore{Store: store.NewMemory(), release: make(chan struct{})}
			if fail {
				st.failWith = errors.New("sync journal: input/output error")
			}
			d.store = st
			web := &container.Container{ID: "aaaa1111bbbb", Name: "web", Config: container.Config{
				Mounts: []container.Mount{{Type: container.MountVolume, Source: "data", Destination: "/data"}}}}
			done := make(chan error)
			go func() {
				d.mu.Lock()
				defer d.mu.Unlock()
				done <- d.recordCreateLocked(web)
			}()
			waitPending(t, d, web.ID, "the create never let d.mu go while its record waited for the disk")
			wantHeld(t, d, web, "data")
			close(st.release)
			if err := <-done; (err != nil) != fail {
				t.Fatalf("recordCreateLocked: %v, want an error: %v", err, fail)
			}
			d.mu.Lock()
			defer d.mu.Unlock()
			if h := d.nameHolderLocked("web"); h != nil {
				t.Errorf("the name is held after the record's wait: %v", h)
			}
		})
	}
}
