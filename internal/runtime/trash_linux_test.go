package runtime

import (
	"os"
	"path/filepath"
	"testing"
)

// DeleteLater moves a container's data directory aside at once; its
// purge deletes it (run by the daemon after the container's lock), and a
// runtime started after a crash empties what a purge left.
func TestDeleteLaterMovesAsideThenPurges(t *testing.T) {
	rt := newTestRuntime(t)
	id := randomID(t)
	layer := filepath.Join(rt.dataDir(id), "upper", "big")
	if err := os.MkdirAll(layer, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(layer, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	purge, err := rt.DeleteLater(id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(rt.dataDir(id)); !os.IsNotExist(err) {
		t.Errorf("the data directory is still in place: %v", err)
	}
	trashed := filepath.Join(rt.trashDir(), id, "upper", "big", "f")
	if _, err := os.Stat(trashed); err != nil {
		t.Fatalf("not in the trash: %v", err)
	}
	if err := purge(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(rt.trashDir(), id)); !os.IsNotExist(err) {
		t.Errorf("after the purge: %v", err)
	}
	// A crash between the two: the next runtime empties the trash.
	left := filepath.Join(rt.trashDir(), "leftover", "f")
	if err := os.MkdirAll(filepath.Dir(left), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := resetTrash(rt.trashDir()); err != nil { // what New does
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(left)); !os.IsNotExist(err) {
		t.Errorf("a new runtime left the trash: %v", err)
	}
	if again, err := rt.DeleteLater(id); err != nil || again() != nil {
		t.Errorf("a second delete: %v", err)
	}
}
