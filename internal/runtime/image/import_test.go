package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/nstest"
	"github.com/berth-net/berth/internal/runtime/image/imagetest"
	"github.com/berth-net/berth/internal/store"
)

type entry struct {
	hdr  tar.Header
	body string
}

func dir(name string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755}}
}
func file(name, body string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))}, body: body}
}
func symlink(name, target string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
}
func hardlink(name, target string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target}}
}

func tarOf(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := e.hdr
		if hdr.ModTime.IsZero() {
			hdr.ModTime = time.Date(2020, 2, 2, 0, 0, 0, 0, time.UTC)
		}
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatalf("tar header %q: %v", hdr.Name, err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatalf("tar body %q: %v", hdr.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// compressedWith is b compressed by the program name run with args
// (bzip2, xz, zstd: what the tests need a writer of and Go has none).
func compressedWith(t *testing.T, b []byte, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return out
}

func newTestStore(t *testing.T) (*Store, string) {
	t.Helper()
	// Extraction sets owners and device nodes: that needs root.
	nstest.RequireRoot(t)
	dir := filepath.Join(t.TempDir(), "images")
	s, err := NewStore(dir, store.NewMemory())
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func mustImport(t *testing.T, s *Store, b []byte, repo, tag string) *Image {
	t.Helper()
	img, err := s.Import(context.Background(), bytes.NewReader(b), repo, tag, "")
	if err != nil {
		t.Fatalf("import %s:%s: %v", repo, tag, err)
	}
	return img
}

func TestImportBusybox(t *testing.T) {
	s, dir := newTestStore(t)
	b, err := os.ReadFile(imagetest.BusyboxTar(t))
	if err != nil {
		t.Fatal(err)
	}
	img := mustImport(t, s, b, "busybox", "")
	if diff := cmp.Diff([]string{"busybox:latest"}, img.RepoTags); diff != "" {
		t.Errorf("tags (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(img.ID, "sha256:") || len(img.ID) != 71 {
		t.Errorf("ID = %q, want sha256:<64 hex>", img.ID)
	}
	if want := filepath.Join(dir, img.ID[7:], "rootfs"); img.RootfsDir != want {
		t.Errorf("RootfsDir = %q, want %q", img.RootfsDir, want)
	}
	st, err := os.Stat(filepath.Join(img.RootfsDir, "bin/busybox"))
	if err != nil || st.Mode().Perm() != 0o755 || img.Size < st.Size() {
		t.Errorf("bin/busybox: %v, %v, size %d", st, err, img.Size)
	}
	if target, err := os.Readlink(filepath.Join(img.RootfsDir, "bin/sh")); err != nil || target != "busybox" {
		t.Errorf("bin/sh -> %q, %v", target, err)
	}
	if st, err := os.Stat(filepath.Join(img.RootfsDir, "tmp")); err != nil || st.Mode()&os.ModeSticky == 0 || st.Mode().Perm() != 0o777 {
		t.Errorf("tmp: %v, %v", st.Mode(), err)
	}
	for _, p := range []string{"proc", "sys", "dev", "etc/hosts", "etc/resolv.conf", "etc/hostname", "etc/passwd", "etc/group"} {
		if _, err := os.Lstat(filepath.Join(img.RootfsDir, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	again := mustImport(t, s, mustRead(t, imagetest.BusyboxTar(t)), "busybox", "")
	if len(again.Layers) != 1 || !cmp.Equal(again.Layers, img.Layers) {
		t.Errorf("layers of two builds of the same tar: %v, %v; want one, the same", img.Layers, again.Layers)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestImportKeepsMetadata(t *testing.T) {
	s, _ := newTestStore(t)
	mtime := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)
	owned := file("data/owned", "x")
	owned.hdr.Uid, owned.hdr.Gid, owned.hdr.Mode, owned.hdr.ModTime = 1234, 5678, 0o4750, mtime
	dataDir := dir("data/")
	dataDir.hdr.ModTime, dataDir.hdr.Mode = mtime, 0o711
	img := mustImport(t, s, tarOf(t,
		dataDir, owned,
		hardlink("data/link", "data/owned"),
		entry{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3}},
		entry{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "run/fifo", Mode: 0o600}},
		file("nodir/deep/file", "missing parents are made"),
	), "meta", "v1")
	root := img.RootfsDir
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(root, "data/owned"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 1234 || st.Gid != 5678 || st.Mode&0o7777 != 0o4750 || st.Nlink != 2 {
		t.Errorf("data/owned: uid %d gid %d mode %o nlink %d", st.Uid, st.Gid, st.Mode&0o7777, st.Nlink)
	}
	for _, p := range []string{"data/owned", "data"} {
		fi, err := os.Stat(filepath.Join(root, p))
		if err != nil || !fi.ModTime().Equal(mtime) {
			t.Errorf("%s mtime: %v, %v", p, fi.ModTime(), err)
		}
	}
	if fi, err := os.Stat(filepath.Join(root, "data")); err != nil || fi.Mode().Perm() != 0o711 {
		t.Errorf("data mode: %v, %v", fi.Mode(), err)
	}
	if err := syscall.Stat(filepath.Join(root, "dev/null"), &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFCHR || st.Rdev != 259 {
		t.Errorf("dev/null: mode %o rdev %d, %v", st.Mode, st.Rdev, err)
	}
	if fi, err := os.Lstat(filepath.Join(root, "run/fifo")); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("run/fifo: %v, %v", fi, err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "nodir/deep/file")); err != nil || string(b) != "missing parents are made" {
		t.Errorf("nodir/deep/file: %q, %v", b, err)
	}
}

func TestImportKeepsXattrs(t *testing.T) {
	s, _ := newTestStore(t)
	f := file("bin/ping", "x")
	f.hdr.Mode = 0o755
	f.hdr.PAXRecords = map[string]string{"SCHILY.xattr.user.berth": "kept"}
	img := mustImport(t, s, tarOf(t, f), "xattr", "")
	buf := make([]byte, 64)
	n, err := syscall.Getxattr(filepath.Join(img.RootfsDir, "bin/ping"), "user.berth", buf)
	if err != nil || string(buf[:n]) != "kept" {
		t.Errorf("user.berth = %q, %v; want \"kept\"", buf[:n], err)
	}
}

// TestImportIsANewImageEachTime: as moby's ImportImage, each import is an
// image of its own (its config has the import's time and comment), whose
// one layer is the digest of the uncompressed tar, compressed or not.
func TestImportIsANewImageEachTime(t *testing.T) {
	s, _ := newTestStore(t)
	b := tarOf(t, file("hello", "world"))
	first := mustImport(t, s, b, "one", "")
	second, err := s.Import(context.Background(), bytes.NewReader(gzipped(t, b)), "two", "v2", "my msg")
	if err != nil {
		t.Fatal(err)
	}
	if first.ID == second.ID {
		t.Errorf("a second import gave the same image %s", first.ID)
	}
	sum := sha256.Sum256(b)
	if want := []string{"sha256:" + hex.EncodeToString(sum[:])}; !cmp.Equal(first.Layers, want) || !cmp.Equal(second.Layers, want) {
		t.Errorf("layers %v and %v, want both %v", first.Layers, second.Layers, want)
	}
	if second.Comment != "my msg" {
		t.Errorf("the second import's comment = %q", second.Comment)
	}
	imgs, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	tags := map[string][]string{}
	for _, img := range imgs {
		tags[img.ID] = img.RepoTags
	}
	if diff := cmp.Diff(map[string][]string{first.ID: {"one:latest"}, second.ID: {"two:v2"}}, tags); diff != "" {
		t.Errorf("images (-want +got):\n%s", diff)
	}
	// One tree for both (Docker keeps one layer): it outlives a restart's
	// sweep of orphans and the first image, and goes with the last.
	if first.RootfsDir != second.RootfsDir {
		t.Errorf("two imports of one tar have trees %s and %s, want one shared", first.RootfsDir, second.RootfsDir)
	}
	ents, _ := os.ReadDir(filepath.Dir(filepath.Dir(first.RootfsDir)))
	if len(ents) != 1 {
		t.Errorf("%d directories in the store, want 1", len(ents))
	}
	if err := s.removeOrphans(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Remove(first.ID, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(second.RootfsDir, "hello")); err != nil {
		t.Errorf("the second image's tree after the first was removed: %v", err)
	}
	if _, _, err := s.Remove(second.ID, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(second.RootfsDir); !os.IsNotExist(err) {
		t.Errorf("the tree after the last image that used it was removed: %v", err)
	}
	// Moved aside under the store's lock, deleted by EmptyTrash; the same
	// image imported and removed again before that goes beside it.
	if ents, _ := os.ReadDir(filepath.Dir(filepath.Dir(first.RootfsDir))); len(ents) != 1 || !strings.HasPrefix(ents[0].Name(), tmpPrefix) {
		t.Errorf("the store after the removal: %v, want the tree moved aside", ents)
	}
	again := mustImport(t, s, tarOf(t, file("hello", "world")), "", "")
	if _, _, err := s.Remove(again.ID, false, nil); err != nil {
		t.Fatalf("remove an image again before its first tree was deleted: %v", err)
	}
	if err := s.EmptyTrash(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(filepath.Dir(first.RootfsDir))); len(ents) != 0 {
		t.Errorf("the store after EmptyTrash: %v, want nothing", ents)
	}
}

// TestImportCompressed: docker import takes a tar compressed with gzip,
// bzip2, xz or zstd (moby's DecompressStream), a zstd stream that starts
// with a skippable frame too, and the layer is the uncompressed tar's
// digest whatever the compression.
func TestImportCompressed(t *testing.T) {
	s, _ := newTestStore(t)
	b := tarOf(t, file("hello", "world"), file("big", strings.Repeat("0123456789", 100000)))
	sum := sha256.Sum256(b)
	want := []string{"sha256:" + hex.EncodeToString(sum[:])}
	zst := compressedWith(t, b, "zstd", "-c", "-q")
	skippable := append([]byte{0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 'b', 'e', 'r', 't'}, zst...)
	for name, body := range map[string][]byte{
		"gzip":                              gzipped(t, b),
		"bzip2":                             compressedWith(t, b, "bzip2", "-c"),
		"xz":                                compressedWith(t, b, "xz", "-c"),
		"zstd":                              zst,
		"zstd with a skippable frame first": skippable,
	} {
		img, err := s.Import(context.Background(), bytes.NewReader(body), "", "", "")
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !cmp.Equal(img.Layers, want) {
			t.Errorf("%s: layers %v, want %v", name, img.Layers, want)
		}
		if got, err := os.ReadFile(filepath.Join(img.RootfsDir, "hello")); err != nil || string(got) != "world" {
			t.Errorf("%s: hello = %q, %v", name, got, err)
		}
	}
}

// TestDecompressErrors: a compressed stream cut or corrupt anywhere is
// an error naming its format, also where the tar inside is whole and
// only the compression's end is missing (a build's ADD and context, load
// and docker cp stop reading at the tar's end: what follows is read up to
// a bound); an input that fails is that error, not the decompressor's
// word for it; a tar without its end blocks, read to its end, ends
// cleanly (a second read at the end is EOF again); a stalled input does
// not hold up close.
func TestDecompressErrors(t *testing.T) {
	nstest.RequireRoot(t)
	b := tarOf(t, file("f", strings.Repeat("x", 5000)))
	xz := compressedWith(t, b, "xz", "-c")
	zst := compressedWith(t, b, "zstd", "-c", "-q")
	badZst := bytes.Clone(zst)
	badZst[len(badZst)-2] ^= 0xff // the content checksum at the end
	for _, tc := range []struct {
		name string
		body []byte
		want string
	}{
		{"xz cut in its data", xz[:len(xz)/2], "read xz archive"},
		{"xz cut in its footer", xz[:len(xz)-8], "read xz archive"},
		{"zstd with a bad checksum", badZst, "read zstd archive"},
		{"gzip cut in its CRC", gzipped(t, b)[:len(gzipped(t, b))-4], "unexpected EOF"},
	} {
		err := ExtractArchive(context.Background(), bytes.NewReader(tc.body), t.TempDir(), false)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
	// Bytes after a whole stream that start no other member or frame (a
	// tape's zero padding) end it, as gzip -d and GNU tar take them.
	zeros := make([]byte, 512)
	for name, body := range map[string][]byte{
		"gzip":  gzipped(t, b),
		"bzip2": compressedWith(t, b, "bzip2", "-c"),
		"zstd":  zst,
		"xz":    xz, // xz's own padding: zero bytes in fours
	} {
		if err := ExtractArchive(context.Background(), bytes.NewReader(append(bytes.Clone(body), zeros...)), t.TempDir(), false); err != nil {
			t.Errorf("a %s stream padded with zeros: %v", name, err)
		}
	}
	src, closeSrc, err := Decompressed(context.Background(), io.MultiReader(bytes.NewReader(xz[:100]), iotest.ErrReader(errors.New("the client went away"))))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, src); err == nil || err.Error() != "the client went away" {
		t.Errorf("an input that failed: %v, want its own error", err)
	}
	closeSrc()

	noEnd := b[:len(b)-1024] // the two zero blocks gone
	src, closeSrc, err = Decompressed(context.Background(), bytes.NewReader(compressedWith(t, noEnd, "xz", "-c")))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(src); err != nil || !bytes.Equal(got, noEnd) {
		t.Errorf("a whole xz stream: %d bytes, %v", len(got), err)
	}
	if n, err := src.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Errorf("a read after the end: %d, %v; want EOF again", n, err)
	}
	closeSrc()

	stall := make(chan struct{})
	defer close(stall)
	_, closeSrc, err = Decompressed(context.Background(), io.MultiReader(bytes.NewReader(xz[:64]), stalled(stall)))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}) // xz has what it was given and waits for more

	go func() { closeSrc(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("close of an xz stream whose input stalls did not return")
	}
}

// stalled is a reader that blocks until c is closed.
type stalled chan struct{}

func (c stalled) Read([]byte) (int, error) {
	<-c
	return 0, io.EOF
}

// TestDecompressedStoppedEarly: a reader of an xz stream that stops
// before its end (a refused entry) ends the xz program when it closes,
// so none is left behind.
func TestDecompressedStoppedEarly(t *testing.T) {
	b := compressedWith(t, bytes.Repeat([]byte("berth"), 4<<20), "xz", "-c", "-0")
	src, closeSrc, err := Decompressed(context.Background(), bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1000)
	if _, err := io.ReadFull(src, buf); err != nil || string(buf[:10]) != "berthberth" {
		t.Fatalf("the stream's start: %q, %v", buf[:10], err)
	}
	f := src.(*decoded).r.(*filtered)
	closeSrc()
	if f.cmd.ProcessState == nil {
		t.Error("the xz program was not ended and reaped at close")
	}
}

func TestImportMovesTag(t *testing.T) {
	s, _ := newTestStore(t)
	old := mustImport(t, s, tarOf(t, file("v", "1")), "app", "")
	cur := mustImport(t, s, tarOf(t, file("v", "2")), "docker.io/library/app:latest", "")
	// A tag given apart replaces the one the repository names (moby's
	// RepoTagReference).
	other := mustImport(t, s, tarOf(t, file("v", "4")), "app:v1", "v2")
	untagged := mustImport(t, s, tarOf(t, file("v", "3")), "", "")
	got := map[string][]string{}
	imgs, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		got[img.ID] = img.RepoTags
	}
	want := map[string][]string{old.ID: {}, cur.ID: {"app:latest"}, other.ID: {"app:v2"}, untagged.ID: {}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tags by image (-want +got):\n%s", diff)
	}
	if imgs[0].ID != untagged.ID {
		t.Errorf("List starts with %s, want the newest %s", imgs[0].ID, untagged.ID)
	}
}

// A symlink planted by an earlier entry must not redirect a later entry out
// of the root: absolute targets resolve inside the image, as in the container.
func TestImportSymlinkStaysInRoot(t *testing.T) {
	s, _ := newTestStore(t)
	outside := t.TempDir()
	img := mustImport(t, s, tarOf(t,
		dir(outside[1:]+"/"),
		symlink("etc", outside),
		file("etc/passwd", "inside"),
		symlink("up", "../../../.."),
		file("up/escaped", "inside too"),
	), "links", "")
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("import wrote outside the root: %v", ents)
	}
	for p, want := range map[string]string{filepath.Join(outside, "passwd"): "inside", "escaped": "inside too"} {
		b, err := os.ReadFile(filepath.Join(img.RootfsDir, p))
		if err != nil || string(b) != want {
			t.Errorf("%s: %q, %v", p, b, err)
		}
	}
}

func TestImportRefusesBadInput(t *testing.T) {
	for _, tc := range []struct {
		name      string
		body      func(t *testing.T) []byte
		repo, tag string
	}{
		{"dot-dot entry", func(t *testing.T) []byte { return tarOf(t, file("../evil", "x")) }, "bad", ""},
		{"dot-dot inside path", func(t *testing.T) []byte { return tarOf(t, file("a/../../evil", "x")) }, "bad", ""},
		{"absolute dot-dot", func(t *testing.T) []byte { return tarOf(t, file("/../evil", "x")) }, "bad", ""},
		{"hard link out", func(t *testing.T) []byte { return tarOf(t, hardlink("l", "../../etc/passwd")) }, "bad", ""},
		{"hard link to missing", func(t *testing.T) []byte { return tarOf(t, hardlink("l", "nothere")) }, "bad", ""},
		{"root replaced by file", func(t *testing.T) []byte { return tarOf(t, file(".", "x")) }, "bad", ""},
		{"unsupported type", func(t *testing.T) []byte {
			return tarOf(t, entry{hdr: tar.Header{Typeflag: 'V', Name: "volume"}})
		}, "bad", ""},
		{"not a tar", func(t *testing.T) []byte { return bytes.Repeat([]byte("garbage!"), 200) }, "bad", ""},
		{"empty archive", func(t *testing.T) []byte { return tarOf(t) }, "bad", ""},
		{"truncated", func(t *testing.T) []byte { return tarOf(t, file("f", strings.Repeat("x", 5000)))[:1500] }, "bad", ""},
		{"broken gzip", func(t *testing.T) []byte { return gzipped(t, tarOf(t, file("f", "x")))[:20] }, "bad", ""},
		{"broken xz", func(t *testing.T) []byte {
			return compressedWith(t, tarOf(t, file("f", strings.Repeat("x", 5000))), "xz", "-c")[:60]
		}, "bad", ""},
		{"broken zstd", func(t *testing.T) []byte {
			b := compressedWith(t, tarOf(t, file("f", strings.Repeat("x", 5000))), "zstd", "-c", "-q")
			b[len(b)/2] ^= 0xff
			return b
		}, "bad", ""},
		{"upper-case repo", func(t *testing.T) []byte { return tarOf(t, file("f", "x")) }, "Bad", ""},
		{"bad tag", func(t *testing.T) []byte { return tarOf(t, file("f", "x")) }, "bad", "-x"},
		{"tag without repo", func(t *testing.T) []byte { return tarOf(t, file("f", "x")) }, "", "v1"},
		{"digest", func(t *testing.T) []byte { return tarOf(t, file("f", "x")) }, "bad@sha256:00", ""},
		{"hex repo", func(t *testing.T) []byte { return tarOf(t, file("f", "x")) }, strings.Repeat("ab", 32), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, dir := newTestStore(t)
			_, err := s.Import(context.Background(), bytes.NewReader(tc.body(t)), tc.repo, tc.tag, "")
			if !errdefs.Is(err, errdefs.KindInvalid) {
				t.Fatalf("err = %v (kind %v), want an Invalid error", err, errdefs.KindOf(err))
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("left behind in the image dir: %v", ents)
			}
			if imgs, _ := s.List(); len(imgs) != 0 {
				t.Errorf("images recorded: %v", imgs)
			}
		})
	}
}

func TestNewStoreRemovesOrphans(t *testing.T) {
	s, dir := newTestStore(t)
	img := mustImport(t, s, tarOf(t, file("f", "x")), "keep", "")
	for _, p := range []string{tmpPrefix + "123/rootfs", strings.Repeat("e", 64) + "/rootfs", "not-ours"} {
		if err := os.MkdirAll(filepath.Join(dir, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := NewStore(dir, s.st); err != nil {
		t.Fatal(err)
	}
	var names []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{img.ID[7:], "not-ours"}, names); diff != "" {
		t.Errorf("image dir after restart (-want +got):\n%s", diff)
	}
}

// TestSetMetaNeverFollowsASymlink: a file swapped for a symlink between
// its write and its chmod (a container racing berth while it fills a
// shared volume) makes the extraction fail; the symlink's target keeps
// its mode (QA round 27: it became setuid and world-writable).
func TestSetMetaNeverFollowsASymlink(t *testing.T) {
	dir := t.TempDir()
	canary := filepath.Join(dir, "canary")
	if err := os.WriteFile(canary, []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(dir, "tree")
	if err := os.Mkdir(tree, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(canary, filepath.Join(tree, "f")); err != nil {
		t.Fatal(err)
	}
	parent, err := unix.Open(tree, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(parent)
	x := &extractor{}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: "f", Mode: 0o4777, Uid: os.Getuid(), Gid: os.Getgid(), ModTime: time.Now()}
	if err := x.setMeta(parent, "f", "f", hdr, nil); err == nil {
		t.Error("setMeta of an entry swapped for a symlink succeeded, want an error")
	}
	if st, err := os.Stat(canary); err != nil || st.Mode() != 0o644 {
		t.Errorf("the symlink's target: mode %v, %v; want it untouched (0644)", st.Mode(), err)
	}
	// A file swapped for another (a hard link to a file of the
	// container's, or one it made) is not the one written: refused, and
	// the other keeps its mode.
	written := filepath.Join(tree, "h")
	if err := os.WriteFile(written, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var made unix.Stat_t
	if err := unix.Stat(written, &made); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "theirs")
	if err := os.WriteFile(other, []byte("their code"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(written); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(other, written); err != nil {
		t.Fatal(err)
	}
	hdr.Name = "h"
	if err := x.setMeta(parent, "h", "h", hdr, &made); err == nil {
		t.Error("setMeta of a file swapped for a hard link to another succeeded, want an error")
	}
	if st, err := os.Stat(other); err != nil || st.Mode() != 0o700 {
		t.Errorf("the swapped-in file: mode %v, %v; want it untouched (0700)", st.Mode(), err)
	}
	// A file is changed as before.
	if err := os.WriteFile(filepath.Join(tree, "g"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	hdr.Name = "g"
	var g unix.Stat_t
	if err := unix.Stat(filepath.Join(tree, "g"), &g); err != nil {
		t.Fatal(err)
	}
	if err := x.setMeta(parent, "g", "g", hdr, &g); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(tree, "g")); err != nil || st.Mode()&os.ModeSetuid == 0 || st.Mode().Perm() != 0o777 {
		t.Errorf("g after setMeta: %v, %v; want setuid and 0777", st.Mode(), err)
	}
}
