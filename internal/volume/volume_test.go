package volume

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/store"
)

// TestStore: a volume is a directory and a record; a create of a name
// there gives that volume; names follow the local driver's rule; an
// unnamed one gets 64 hex; remove takes both.
func TestStore(t *testing.T) {
	dir := t.TempDir()
	s, err := NewStore(dir, store.NewMemory())
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Create("data", map[string]string{"a": "b"})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(s.Mountpoint("data")); err != nil || !fi.IsDir() || s.Mountpoint("data") != filepath.Join(dir, "data", "_data") {
		t.Errorf("mountpoint %s: %v", s.Mountpoint("data"), err)
	}
	if !s.Empty("data") || s.Size("data") != 0 {
		t.Error("a new volume is not empty")
	}
	os.WriteFile(filepath.Join(s.Mountpoint("data"), "f"), []byte("1234"), 0o644)
	if s.Empty("data") || s.Size("data") != 4 {
		t.Errorf("after a write: empty %v, size %d", s.Empty("data"), s.Size("data"))
	}
	// A second hard link of a file is not counted again (moby's
	// directory.Size); a symlink counts its own length.
	if err := os.Link(filepath.Join(s.Mountpoint("data"), "f"), filepath.Join(s.Mountpoint("data"), "g")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("f", filepath.Join(s.Mountpoint("data"), "l")); err != nil {
		t.Fatal(err)
	}
	if got := s.Size("data"); got != 5 {
		t.Errorf("size with a hard link and a symlink %d, want 5", got)
	}
	again, err := s.Create("data", nil)
	if err != nil || again.Labels["a"] != "b" || !again.CreatedAt.Equal(v.CreatedAt) {
		t.Errorf("create of an existing name: %+v, %v; want the volume there", again, err)
	}
	// Unnamed is anonymous, as moby's (docker volume create with no
	// name too), its other labels kept and the caller's map untouched.
	labels := map[string]string{"x": "y"}
	anon, err := s.Create("", labels)
	if err != nil || len(anon.Name) != 64 || !anon.Anonymous() || anon.Labels["x"] != "y" || len(labels) != 1 {
		t.Errorf("an unnamed volume: %+v, %v (labels given: %v)", anon, err, labels)
	}
	if _, err := s.Create("./x", nil); !errdefs.Is(err, errdefs.KindInvalid) || !strings.Contains(err.Error(), "includes invalid characters for a local volume name") {
		t.Errorf("a bad name: %v", err)
	}
	if _, err := s.Create("a", nil); !errdefs.Is(err, errdefs.KindInvalid) || err.Error() != "create a: volume name is too short, names should be at least two alphanumeric characters" {
		t.Errorf("a one-character name: %v", err)
	}
	if vs, err := s.List(); err != nil || len(vs) != 2 {
		t.Errorf("list: %d, %v", len(vs), err)
	}
	if err := s.Remove("data"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
		t.Error("remove left the directory")
	}
	if _, err := s.Get("data"); !errdefs.Is(err, errdefs.KindNotFound) || err.Error() != "get data: no such volume" {
		t.Errorf("get after remove: %v", err)
	}
}

// TestStoreChanged: the hook hears of a volume made (not of a create that
// finds it there) and of one removed, for the daemon's events.
func TestStoreChanged(t *testing.T) {
	s, err := NewStore(t.TempDir(), store.NewMemory())
	if err != nil {
		t.Fatal(err)
	}
	var heard []string
	s.Changed = func(action, name string) { heard = append(heard, action+" "+name) }
	s.Create("data", nil)
	s.Create("data", nil)
	s.Remove("data")
	s.Remove("data") // not there: nothing
	if got := strings.Join(heard, ", "); got != "create data, destroy data" {
		t.Errorf("heard %q, want one create and one destroy", got)
	}
}

// refusingStore is a store whose writes fail while fail is set (a full
// disk under the journal).
type refusingStore struct {
	*store.Memory
	fail, failView bool
}

func (r *refusingStore) Update(fn func(store.Tx) error) error {
	if r.fail {
		return errors.New("journal append: no space left on device")
	}
	return r.Memory.Update(fn)
}

func (r *refusingStore) View(fn func(store.Tx) error) error {
	if r.failView {
		return errors.New("read: input/output error")
	}
	return r.Memory.View(fn)
}

// TestRemoveThatFailsKeepsTheFiles: a volume rm whose record cannot be
// deleted leaves the volume whole, files included; a crash between the
// files' move and the record's delete gives them back at the next start;
// what a finished removal left is deleted. The files stayed moved aside
// and the next start deleted them, the record still there.
func TestRemoveThatFailsKeepsTheFiles(t *testing.T) {
	dir := t.TempDir()
	st := &refusingStore{Memory: store.NewMemory()}
	s, err := NewStore(dir, st)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"data", "other"} {
		if _, err := s.Create(name, nil); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(s.Mountpoint(name), "precious"), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st.fail = true
	if err := s.Remove("data"); err == nil {
		t.Fatal("a removal whose record stays succeeded")
	}
	st.fail = false
	if _, err := os.Stat(filepath.Join(s.Mountpoint("data"), "precious")); err != nil {
		t.Errorf("after a failed rm the volume's files are gone: %v", err)
	}

	// A crash after the move: the record is there, the files aside.
	moved := filepath.Join(dir, removingPrefix+"0123456789abcdef-data")
	if err := os.Rename(filepath.Join(dir, "data"), moved); err != nil {
		t.Fatal(err)
	}
	// A finished removal's leftovers, and an older berth's.
	if err := st.Update(func(tx store.Tx) error { return tx.Delete(store.BucketVolumes, "other") }); err != nil {
		t.Fatal(err)
	}
	finished := filepath.Join(dir, removingPrefix+"fedcba9876543210-other")
	if err := os.Rename(filepath.Join(dir, "other"), finished); err != nil {
		t.Fatal(err)
	}
	older := filepath.Join(dir, removingPrefix+"00112233aabbccdd")
	if err := os.Mkdir(older, 0o700); err != nil {
		t.Fatal(err)
	}
	if s, err = NewStore(dir, st); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(s.Mountpoint("data"), "precious")); err != nil || string(b) != "data" {
		t.Errorf("after a crash mid-rm and a restart: %q, %v; want the volume's files back", b, err)
	}
	for _, p := range []string{moved, finished, older} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left after the start: %v", filepath.Base(p), err)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "other")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a removed volume's files came back: %v", err)
	}
}

// TestStartDeletesWhatACopyStaged: a copy of an image's files into a
// volume that a crash cut short left them staged beside the volume's
// files (StagingDir); the next start deletes them and leaves the volume
// as it was, empty, for the next create to fill.
func TestStartDeletesWhatACopyStaged(t *testing.T) {
	dir := t.TempDir()
	st := store.NewMemory()
	s, err := NewStore(dir, st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create("vol", nil); err != nil {
		t.Fatal(err)
	}
	staged := StagingDir(s.Mountpoint("vol"))
	if filepath.Dir(staged) != filepath.Join(dir, "vol") {
		t.Fatalf("staging directory %s is not beside the volume's files", staged)
	}
	if err := os.MkdirAll(filepath.Join(staged, "half"), 0o700); err != nil {
		t.Fatal(err)
	}
	if s, err = NewStore(dir, st); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(staged); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("staged files after a start: %v", err)
	}
	if !s.Empty("vol") {
		t.Error("the volume is not empty")
	}
}

// TestStartKeepsRemovalsItCannotJudge: a start that cannot read the store
// leaves what a removal moved aside where it is (the record may still be
// there), where it deleted it as if the volume were gone.
func TestStartKeepsRemovalsItCannotJudge(t *testing.T) {
	dir := t.TempDir()
	moved := filepath.Join(dir, removingPrefix+"0123456789abcdef-data", "_data")
	if err := os.MkdirAll(moved, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := NewStore(dir, &refusingStore{Memory: store.NewMemory(), failView: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(moved); err != nil {
		t.Errorf("files of a removal the store could not judge: %v, want kept", err)
	}
}
