package runtime

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/errdefs"
)

// tarOf builds a tar stream of hdrs, each regular file's body its Linkname
// field's text (cleared before writing).
func tarOf(t *testing.T, hdrs ...tar.Header) *bytes.Buffer {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, h := range hdrs {
		body := ""
		if h.Typeflag == tar.TypeReg {
			body, h.Linkname = h.Linkname, ""
			h.Size = int64(len(body))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &b
}

// TestFSView: docker cp's view of a container that is not running mounts
// its overlay in a namespace of its own (gone with the view), shows the
// files berth mounts over it, writes only to the container's upper
// layer, resolves symlinks inside the container, and unpacks and packs
// tar streams as moby's archive package does, refusing what would lead
// out of the extraction point.
func TestFSView(t *testing.T) {
	rt := newTestRuntime(t)
	id, lower := randomID(t), busyboxRootfs(t)
	t.Cleanup(func() {
		if err := rt.Delete(id); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	hostGroup := filepath.Join(t.TempDir(), "group")
	if err := os.WriteFile(hostGroup, []byte("berth's own\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := rt.OpenFS(id, lower, map[string]FSMount{"/etc/group": {Source: hostGroup}})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	run := func(fn func() error) error {
		t.Helper()
		return v.Run(fn)
	}

	// The file mounted over the container's.
	var got []byte
	if err := run(func() (err error) { got, err = os.ReadFile("/etc/group"); return err }); err != nil || string(got) != "berth's own\n" {
		t.Errorf("/etc/group in the view = %q, %v; want the host file's", got, err)
	}
	if err := run(func() error { _, err := Stat("/etc/not-there"); return err }); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Stat of a missing path: %v, want not found", err)
	}

	tree := tarOf(t,
		tar.Header{Typeflag: tar.TypeDir, Name: "d/", Mode: 0o750, Uid: 7, Gid: 8},
		tar.Header{Typeflag: tar.TypeReg, Name: "d/f", Mode: 0o640, Uid: 1000, Gid: 1000, Linkname: "hello"},
		tar.Header{Typeflag: tar.TypeLink, Name: "d/h", Linkname: "d/f", Uid: 1000, Gid: 1000},
		tar.Header{Typeflag: tar.TypeSymlink, Name: "d/l", Linkname: "/etc/group"},
		tar.Header{Typeflag: tar.TypeReg, Name: "implied/g", Mode: 0o600, Linkname: "x"},
	)
	if err := run(func() error { return Extract(tree, "/tmp", ExtractOptions{NoOverwriteDirNonDir: true}) }); err != nil {
		t.Fatalf("Extract: %v", err)
	}
	// Only the upper layer changed: the image is every container's.
	for _, p := range []string{"tmp/d/f", "tmp/d/h", "tmp/implied/g"} {
		if _, err := os.Stat(filepath.Join(rt.upperDir(id), p)); err != nil {
			t.Errorf("upper layer: %v", err)
		}
		if _, err := os.Lstat(filepath.Join(lower, p)); err == nil {
			t.Errorf("the image's tree has %s", p)
		}
	}
	var st os.FileInfo
	if err := run(func() (err error) { st, err = os.Stat("/tmp/implied"); return err }); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("implied directory: %v, %v; want mode 0755", st, err)
	}
	// Links resolve inside the container, ".." and all.
	if err := run(func() error { return os.Symlink("../../../../../d-link", "/tmp/up") }); err != nil {
		t.Fatal(err)
	}
	if err := run(func() error { return os.Symlink("/tmp/d/l", "/d-link") }); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/tmp/d/l", "/tmp/up"} {
		if err := run(func() error {
			ps, err := Stat(p)
			if err == nil && (ps.LinkTarget != "/etc/group" || ps.Mode&os.ModeSymlink == 0 || ps.Name != filepath.Base(p)) {
				t.Errorf("Stat(%s) = %+v, want a symlink whose target resolves to /etc/group", p, ps)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}

	// Packed again as docker cp sends a directory: under its base name,
	// IDs kept, a second link as a hard link.
	var out bytes.Buffer
	if err := run(func() error { return Archive(&out, "/tmp/d", true) }); err != nil {
		t.Fatalf("Archive: %v", err)
	}
	entries := map[string]*tar.Header{}
	var names []string
	tr := tar.NewReader(&out)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		entries[h.Name], names = h, append(names, h.Name)
	}
	if strings.Join(names, " ") != "d/ d/f d/h d/l" {
		t.Errorf("archive entries %q, want d/ d/f d/h d/l", names)
	}
	if h := entries["d/f"]; h == nil || h.Uid != 1000 || h.Mode&0o777 != 0o640 || h.Size != 5 || h.Uname != "" {
		t.Errorf("d/f's header %+v, want uid 1000, mode 0640, 5 bytes, no user name", h)
	}
	if h := entries["d/h"]; h == nil || h.Typeflag != tar.TypeLink || h.Linkname != "d/f" {
		t.Errorf("d/h's header %+v, want a hard link to d/f", h)
	}
	if h := entries["d/"]; h == nil || h.Uid != 7 || h.Mode&0o777 != 0o750 {
		t.Errorf("d/'s header %+v, want uid 7, mode 0750", h)
	}
	out.Reset()
	if err := run(func() error { return Archive(&out, "/tmp/d/f", false) }); err != nil {
		t.Fatal(err)
	}
	if h, err := tar.NewReader(&out).Next(); err != nil || h.Name != "f" {
		t.Errorf("a file's archive starts with %+v, %v; want f", h, err)
	}

	// docker export: every file, named from the root, the root left out.
	out.Reset()
	if err := run(func() error { return Export(&out) }); err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for tr := tar.NewReader(&out); ; {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		exported[h.Name] = true
	}
	for _, want := range []string{"bin/", "etc/group", "tmp/d/", "tmp/d/f", "tmp/implied/g"} {
		if !exported[want] {
			t.Errorf("export lacks %s", want)
		}
	}
	if exported["/"] || exported["./"] || exported[""] {
		t.Error("export has an entry for the root")
	}

	// Refusals, with moby's words.
	for _, tc := range []struct {
		name string
		tar  *bytes.Buffer
		path string
		opts ExtractOptions
		want string
		kind errdefs.Kind
	}{
		{"file over directory", tarOf(t, tar.Header{Typeflag: tar.TypeReg, Name: "d", Linkname: "x"}), "/tmp", ExtractOptions{NoOverwriteDirNonDir: true},
			`cannot overwrite directory "/tmp/d" with non-directory "/tmp"`, errdefs.KindUnknown},
		{"symlink out", tarOf(t, tar.Header{Typeflag: tar.TypeSymlink, Name: "esc", Linkname: "../../x"}), "/tmp", ExtractOptions{},
			`invalid symlink "/tmp/esc" -> "../../x"`, errdefs.KindUnknown},
		{"hard link out", tarOf(t, tar.Header{Typeflag: tar.TypeLink, Name: "hl", Linkname: "../etc/group"}), "/tmp", ExtractOptions{},
			`invalid hardlink "/etc/group" -> "../etc/group"`, errdefs.KindUnknown},
		{"name out", tarOf(t, tar.Header{Typeflag: tar.TypeReg, Name: "../x", Linkname: "x"}), "/tmp/d", ExtractOptions{},
			`"../x" is outside of "/tmp/d"`, errdefs.KindUnknown},
		{"not a directory", tarOf(t), "/tmp/d/f", ExtractOptions{}, "extraction point is not a directory", errdefs.KindInvalid},
		{"read-only", tarOf(t), "/tmp", ExtractOptions{ReadOnly: true}, "container rootfs is marked read-only", errdefs.KindInvalid},
		{"unknown owner", tarOf(t), "/tmp", ExtractOptions{Owner: "nosuch"}, `failed to look up user "nosuch" in container: no matching entries in passwd file`, errdefs.KindInvalid},
		{"unknown group", tarOf(t), "/tmp", ExtractOptions{Owner: "0:nosuch"}, `failed to look up group "nosuch" in container: no matching entries in group file`, errdefs.KindInvalid},
	} {
		err := run(func() error { return Extract(tc.tar, tc.path, tc.opts) })
		if err == nil || !strings.Contains(err.Error(), tc.want) || errdefs.KindOf(err) != tc.kind {
			t.Errorf("%s: %v (kind %v), want %q (kind %v)", tc.name, err, errdefs.KindOf(err), tc.want, tc.kind)
		}
	}
	if _, err := os.Lstat(filepath.Join(rt.upperDir(id), "x")); err == nil {
		t.Error("a refused entry was written")
	}

	// A symlink to a directory, asked for with a trailing "/" or "/.", is
	// the directory's contents (moby's getWalkRoot), not the link.
	if err := run(func() error { return os.Symlink("/tmp/d", "/tmp/dl") }); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"/tmp/dl/": "dl/ dl/f dl/h dl/l", "/tmp/dl/.": "./ ./f ./h ./l"} {
		out.Reset()
		if err := run(func() error { return Archive(&out, path, true) }); err != nil {
			t.Fatal(err)
		}
		var got []string
		for tr := tar.NewReader(&out); ; {
			h, err := tr.Next()
			if err != nil {
				break
			}
			got = append(got, h.Name)
		}
		if strings.Join(got, " ") != want {
			t.Errorf("Archive(%s) entries %q, want %s", path, got, want)
		}
	}

	// docker cp -a: the container's user owns what is unpacked.
	if err := run(func() error {
		return Extract(tarOf(t, tar.Header{Typeflag: tar.TypeReg, Name: "mine", Uid: 1000, Linkname: "x"}), "/tmp", ExtractOptions{Owner: "nobody"})
	}); err != nil {
		t.Fatal(err)
	}
	if err := run(func() (err error) { st, err = os.Stat("/tmp/mine"); return err }); err != nil || st.Sys().(*syscall.Stat_t).Uid != 65534 {
		t.Errorf("/tmp/mine unpacked for nobody: %v, %v; want uid 65534", st, err)
	}

	// A container that made its /etc/passwd a FIFO cannot hang docker cp
	// -a: the file is refused, not read.
	if err := run(func() error {
		if err := os.Remove("/etc/passwd"); err != nil {
			return err
		}
		return unix.Mkfifo("/etc/passwd", 0o644)
	}); err != nil {
		t.Fatal(err)
	}
	err = run(func() error {
		return Extract(tarOf(t, tar.Header{Typeflag: tar.TypeReg, Name: "f2", Linkname: "x"}), "/tmp", ExtractOptions{Owner: "nobody"})
	})
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Extract with a FIFO for /etc/passwd: %v, want it refused", err)
	}

	// The overlay lived in the view's namespace only, and is gone when
	// Close returns: a mount that insists on a free upper directory
	// (index=on) succeeds at once.
	v.Close()
	var fs unix.Statfs_t
	if err := unix.Statfs(rt.rootfs(id), &fs); err == nil && fs.Type == unix.OVERLAYFS_SUPER_MAGIC {
		t.Error("the view's overlay is mounted in the test's namespace")
	}
	target := t.TempDir()
	opts := "lowerdir=" + lower + ",upperdir=" + rt.upperDir(id) + ",workdir=" + filepath.Join(rt.dataDir(id), "work") + ",index=on"
	if err := unix.Mount("overlay", target, "overlay", 0, opts); err != nil {
		t.Errorf("mount the container's overlay again right after Close: %v (the view's still holds the upper directory)", err)
	} else if err := unix.Unmount(target, 0); err != nil {
		t.Error(err)
	}
}

// TestFSViewClosedUnderARun: a Run or Go that comes after the view was
// closed (a start or a removal of the container ended it) returns
// ErrViewClosed; it panicked on a send on the closed channel.
func TestFSViewClosedUnderARun(t *testing.T) {
	rt := newTestRuntime(t)
	id, lower := randomID(t), busyboxRootfs(t)
	t.Cleanup(func() {
		if err := rt.Delete(id); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	v, err := rt.OpenFS(id, lower, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Run(func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	v.Close()
	if err := v.Run(func() error { t.Error("ran in a closed view"); return nil }); !errors.Is(err, ErrViewClosed) {
		t.Errorf("Run after Close: %v, want ErrViewClosed", err)
	}
	if err := v.Go(func() { t.Error("ran in a closed view") }); !errors.Is(err, ErrViewClosed) {
		t.Errorf("Go after Close: %v, want ErrViewClosed", err)
	}
	v.Close() // twice is fine
}
