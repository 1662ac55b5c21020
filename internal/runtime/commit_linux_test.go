package runtime

import (
	"archive/tar"
	"bytes"
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/nstest"
)

// TestCommitTree: a committed tree is the image's with the upper
// directory's changes applied as overlayfs meant them: a whiteout
// deletes, an opaque directory hides the image's entries, a file replaces
// a directory, new and changed files are copies with their owner, mode
// (set-user-ID included), times and extended attributes, hard links
// among them kept, the image's untouched files hard links to its tree
// (which is left as it was); a directory of the image replaced with a
// link out of the tree is not looked through (review of session 38: its
// subdirectories' times were written behind the link); the layer's tar
// has whiteouts, opaque markers, hard links and the container's
// directory times, so its diff ID is the same for the same changes a
// second apart and the empty layer's for none; a redirected directory is
// refused.
func TestCommitTree(t *testing.T) {
	nstest.RequireRoot(t) // owners, whiteouts and trusted.* attributes
	base := t.TempDir()
	r := &Runtime{cfg: Config{DataDir: filepath.Join(base, "containers")}}
	id := strings.Repeat("ab", 32)
	lower, upper := filepath.Join(base, "lower"), r.upperDir(id)
	write := func(p, body string, mode os.FileMode) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(lower, "gone"), "image", 0o644)
	write(filepath.Join(lower, "kept"), "image kept", 0o644)
	write(filepath.Join(lower, "etc/conf"), "old", 0o644)
	write(filepath.Join(lower, "opq/hidden"), "image", 0o644)
	write(filepath.Join(lower, "wasdir/inside"), "image", 0o644)
	if err := os.Symlink("kept", filepath.Join(lower, "link")); err != nil {
		t.Fatal(err)
	}

	if err := os.MkdirAll(upper, 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := r.CommitTree(context.Background(), id, lower, filepath.Join(base, "empty"))
	if err != nil || got.DiffID != "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef" || got.DiffSize != 0 {
		t.Fatalf("no changes: %+v, %v; want the empty layer", got, err)
	}

	if err := unix.Mknod(filepath.Join(upper, "gone"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	write(filepath.Join(upper, "etc/conf"), "new", 0o600)
	write(filepath.Join(upper, "opq/mine"), "container", 0o644)
	if err := unix.Setxattr(filepath.Join(upper, "opq"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	write(filepath.Join(upper, "wasdir"), "a file now", 0o644)
	write(filepath.Join(upper, "bin/tool"), "suid", 0o4755)
	if err := os.Chown(filepath.Join(upper, "bin/tool"), 1000, 1000); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(filepath.Join(upper, "bin/tool"), 0o4755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(filepath.Join(upper, "bin/tool"), "user.note", []byte("kept"), 0); err != nil {
		t.Fatal(err)
	}
	write(filepath.Join(upper, "h1"), "linked", 0o644)
	if err := os.Link(filepath.Join(upper, "h1"), filepath.Join(upper, "h2")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(upper, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/conf", filepath.Join(upper, "newlink")); err != nil {
		t.Fatal(err)
	}

	// An image directory the container replaced with a link out of its
	// root, and one it deleted, with one inside: nothing under them is
	// touched, in the tree or through the link.
	outside := filepath.Join(base, "outside")
	write(filepath.Join(outside, "bin/x"), "host", 0o644)
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(outside, "bin"), old, old); err != nil {
		t.Fatal(err)
	}
	write(filepath.Join(lower, "usr/bin/tool"), "image", 0o755)
	write(filepath.Join(lower, "var/lib/db"), "image", 0o644)
	if err := os.Symlink(outside, filepath.Join(upper, "usr")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(upper, "var"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	// A directory of the container's own with a fixed time.
	write(filepath.Join(upper, "srv/app/conf"), "c", 0o644)
	srvTime := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(upper, "srv/app"), srvTime, srvTime); err != nil {
		t.Fatal(err)
	}

	dst := filepath.Join(base, "tree")
	var layer bytes.Buffer
	got, err = commitTree(context.Background(), upper, lower, dst, &layer)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(outside, "bin")); err != nil || !fi.ModTime().Equal(old) {
		t.Errorf("a host directory behind the container's link was touched: %v, %v", fi.ModTime(), err)
	}
	if l, err := os.Readlink(filepath.Join(dst, "usr")); err != nil || l != outside {
		t.Errorf("usr in the tree: %q, %v; want the container's link", l, err)
	}
	if fi, err := os.Stat(filepath.Join(dst, "srv/app")); err != nil || !fi.ModTime().Equal(srvTime) {
		t.Errorf("srv/app's time in the tree: %v, %v; want the container's %v", fi.ModTime(), err, srvTime)
	}
	entries := map[string]*tar.Header{}
	tr := tar.NewReader(&layer)
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		entries[hdr.Name] = hdr
	}
	for _, name := range []string{".wh.gone", ".wh.var", "opq/", "opq/.wh..wh..opq", "opq/mine", "etc/conf", "usr", "srv/app/", "srv/app/conf"} {
		if entries[name] == nil {
			t.Errorf("the layer lacks %s: %v", name, slices.Sorted(maps.Keys(entries)))
		}
	}
	if h := entries["srv/app/"]; h != nil && !h.ModTime.Equal(srvTime) {
		t.Errorf("srv/app/ in the layer: time %v, want %v", h.ModTime, srvTime)
	}
	h1h, h2h := entries["h1"], entries["h2"]
	if h1h == nil || h2h == nil || h1h.Typeflag != tar.TypeReg || h2h.Typeflag != tar.TypeLink || h2h.Linkname != "h1" {
		t.Errorf("the layer's h1 and h2: %+v %+v; want h2 a hard link to h1", h1h, h2h)
	}
	for name, want := range map[string]string{"kept": "image kept", "etc/conf": "new", "opq/mine": "container", "wasdir": "a file now", "bin/tool": "suid", "h2": "linked"} {
		if b, err := os.ReadFile(filepath.Join(dst, name)); err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", name, b, err, want)
		}
	}
	for _, name := range []string{"gone", "opq/hidden", "wasdir/inside"} {
		if _, err := os.Lstat(filepath.Join(dst, name)); err == nil {
			t.Errorf("%s is still there: %v", name, err)
		}
	}
	var st, lst, h1, h2 unix.Stat_t
	unix.Lstat(filepath.Join(dst, "bin/tool"), &st)
	if st.Uid != 1000 || st.Gid != 1000 || st.Mode&0o7777 != 0o4755 {
		t.Errorf("bin/tool: owner %d:%d mode %o; want 1000:1000 4755", st.Uid, st.Gid, st.Mode&0o7777)
	}
	if v, err := lgetxattr(filepath.Join(dst, "bin/tool"), "user.note"); err != nil || string(v) != "kept" {
		t.Errorf("bin/tool's extended attribute: %q, %v", v, err)
	}
	if _, err := lgetxattr(filepath.Join(dst, "opq"), "trusted.overlay.opaque"); err == nil {
		t.Error("overlayfs's own attribute was copied into the image")
	}
	unix.Lstat(filepath.Join(dst, "kept"), &st)
	unix.Lstat(filepath.Join(lower, "kept"), &lst)
	if st.Ino != lst.Ino {
		t.Error("an unchanged file of the image is not a link to its tree")
	}
	unix.Lstat(filepath.Join(dst, "h1"), &h1)
	unix.Lstat(filepath.Join(dst, "h2"), &h2)
	if h1.Ino != h2.Ino {
		t.Error("the container's hard links were not kept")
	}
	unix.Lstat(filepath.Join(dst, "fifo"), &st)
	if st.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("fifo: mode %o", st.Mode)
	}
	if l, err := os.Readlink(filepath.Join(dst, "newlink")); err != nil || l != "/etc/conf" {
		t.Errorf("newlink: %q, %v", l, err)
	}
	for name, want := range map[string]string{"gone": "image", "etc/conf": "old", "opq/hidden": "image", "wasdir/inside": "image"} {
		if b, err := os.ReadFile(filepath.Join(lower, name)); err != nil || string(b) != want {
			t.Errorf("the image's %s changed: %q, %v", name, b, err)
		}
	}
	if got.DiffSize != int64(len("new")+len("container")+len("a file now")+len("suid")+len("linked")+len("c")) { // h2 is h1
		t.Errorf("the changes' size %d", got.DiffSize)
	}
	first, err := r.CommitTree(context.Background(), id, lower, filepath.Join(base, "tree1"))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // the tar keeps whole seconds
	again, err := r.CommitTree(context.Background(), id, lower, filepath.Join(base, "tree2"))
	if err != nil || again.DiffID != first.DiffID {
		t.Errorf("the same changes a second apart: %s and %s (%v)", first.DiffID, again.DiffID, err)
	}

	if err := os.Mkdir(filepath.Join(upper, "moved"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(filepath.Join(upper, "moved"), "trusted.overlay.redirect", []byte("/opq"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := r.CommitTree(context.Background(), id, lower, filepath.Join(base, "tree3")); err == nil || !strings.Contains(err.Error(), "redirect_dir") {
		t.Errorf("a redirected directory: %v", err)
	}
}

// TestCommitUpper: docker build's COPY layer: the staged directory laid
// over the image's tree as a container's upper directory is (new files
// copied, the image's linked), over nothing for FROM scratch; the same
// staged files give the same diff ID.
func TestCommitUpper(t *testing.T) {
	nstest.RequireRoot(t) // owners
	base := t.TempDir()
	lower, upper := filepath.Join(base, "lower"), filepath.Join(base, "upper")
	for p, body := range map[string]string{filepath.Join(lower, "etc/os"): "image", filepath.Join(upper, "app/main"): "copied", filepath.Join(upper, "etc/extra"): "more"} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	first, err := CommitUpper(context.Background(), upper, lower, filepath.Join(base, "one"))
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"one/etc/os": "image", "one/etc/extra": "more", "one/app/main": "copied"} {
		if b, err := os.ReadFile(filepath.Join(base, p)); err != nil || string(b) != want {
			t.Errorf("%s: %q, %v", p, b, err)
		}
	}
	var li, oi unix.Stat_t
	if unix.Stat(filepath.Join(lower, "etc/os"), &li) != nil || unix.Stat(filepath.Join(base, "one/etc/os"), &oi) != nil || li.Ino != oi.Ino {
		t.Errorf("the image's file is not linked into the new tree")
	}
	again, err := CommitUpper(context.Background(), upper, lower, filepath.Join(base, "two"))
	if err != nil || again.DiffID != first.DiffID || first.DiffID == "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef" {
		t.Errorf("diff IDs %s and %s (%v)", first.DiffID, again.DiffID, err)
	}
	scratch, err := CommitUpper(context.Background(), upper, "", filepath.Join(base, "three"))
	if err != nil || scratch.DiffID != first.DiffID {
		t.Errorf("over nothing: %+v, %v", scratch, err)
	}
	if _, err := os.Stat(filepath.Join(base, "three/etc/os")); !os.IsNotExist(err) {
		t.Errorf("FROM scratch's tree has the image's file: %v", err)
	}
	if ents, _ := os.ReadDir(base); len(ents) != 5 {
		t.Errorf("left beside the trees: %d entries in %s", len(ents), base)
	}
}
