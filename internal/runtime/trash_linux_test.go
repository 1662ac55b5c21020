package runtime

import (
	"os"
	"path/filepath"
	"testing"
)

// DeleteLater moves a container's data directory aside at once; its
// purge deletes it (run by the daemon after the container's lock), its
// restore puts it back (a removal that failed after it), and a runtime
// started after a crash gives back a recorded container's directory and
// empties the rest.
func TestDeleteLaterMovesAsideThenPurges(t *testing.T) {
	rt := newTestRuntime(t)
	id := randomID(t)
	file := filepath.Join(rt.dataDir(id), "upper", "big", "f")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	trashed, err := rt.DeleteLater(id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(rt.dataDir(id)); !os.IsNotExist(err) {
		t.Errorf("the data directory is still in place: %v", err)
	}
	inTrash := filepath.Join(rt.trashDir(), id, "upper", "big", "f")
	if _, err := os.Stat(inTrash); err != nil {
		t.Fatalf("not in the trash: %v", err)
	}
	if err := trashed.Restore(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(file); err != nil {
		t.Errorf("after the restore: %v", err)
	}
	if trashed, err = rt.DeleteLater(id); err != nil {
		t.Fatal(err)
	}
	if err := trashed.Purge(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(rt.trashDir(), id)); !os.IsNotExist(err) {
		t.Errorf("after the purge: %v", err)
	}
	if again, err := rt.DeleteLater(id); err != nil || again.Purge() != nil || again.Restore() != nil {
		t.Errorf("a second delete: %v", err)
	}

	// A crash between the move and the purge: a container still recorded
	// gets its files back, the rest goes.
	kept, gone := randomID(t), randomID(t)
	for _, c := range []string{kept, gone} {
		if err := os.MkdirAll(filepath.Join(rt.trashDir(), c, "upper"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	recorded := func(id string) bool { return id == kept }
	if err := settleTrash(rt.trashDir(), rt.cfg.DataDir, recorded); err != nil { // what New does
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(rt.dataDir(kept), "upper")); err != nil {
		t.Errorf("a recorded container's files after the start: %v", err)
	}
	for _, p := range []string{rt.dataDir(gone), filepath.Join(rt.trashDir(), gone), filepath.Join(rt.trashDir(), kept)} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s after the start: %v", p, err)
		}
	}
}
