package daemon

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-net/berth/internal/nstest"
	"github.com/berth-net/berth/internal/volume"
)

// TestCopyUpStagesThenMoves: the image's files are copied beside the
// volume and moved in once whole; a name a container made in the volume
// meanwhile stays its; nothing is left staged. A copy cut short (a full
// disk, a killed daemon) left a part of the files in the volume, which
// no later create filled, as it was no longer empty.
func TestCopyUpStagesThenMoves(t *testing.T) {
	nstest.RequireRoot(t) // the copy keeps the files' owners
	rootfs := t.TempDir()
	for name, body := range map[string]string{"data/a": "image a", "data/sub/c": "image c", "data/b": "image b"} {
		p := filepath.Join(rootfs, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	to := filepath.Join(t.TempDir(), "vol", "_data")
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(to, "b"), []byte("the container's"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := copyUp(rootfs, "/data", to); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"a": "image a", "sub/c": "image c", "b": "the container's"} {
		if b, err := os.ReadFile(filepath.Join(to, name)); err != nil || string(b) != want {
			t.Errorf("%s in the volume: %q, %v; want %q", name, b, err, want)
		}
	}
	if _, err := os.Lstat(volume.StagingDir(to)); !os.IsNotExist(err) {
		t.Errorf("the staging directory is left: %v", err)
	}
}
