package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/errdefs"
)

// saveArchive is a docker save archive (the OCI layout's blobs, and the
// manifest.json docker load reads) of one image with layers and config;
// the config's "rootfs" is made to name the layers' diff IDs.
func saveArchive(t *testing.T, config []byte, tags []string, layers ...[]byte) []byte {
	t.Helper()
	var cfg map[string]any
	if err := json.Unmarshal(config, &cfg); err != nil {
		t.Fatal(err)
	}
	var diffIDs []string
	for _, l := range layers {
		sum := sha256.Sum256(l)
		diffIDs = append(diffIDs, "sha256:"+hex.EncodeToString(sum[:]))
	}
	cfg["rootfs"] = map[string]any{"type": "layers", "diff_ids": diffIDs}
	config, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var entries []entry
	manifest := manifestEntry{Config: "blobs/sha256/config", RepoTags: tags}
	entries = append(entries, dir("blobs/"), dir("blobs/sha256/"), file("blobs/sha256/config", string(config)))
	for i, l := range layers {
		name := "blobs/sha256/layer" + string(rune('a'+i))
		entries = append(entries, file(name, string(l)))
		// As the legacy layout: a link to the blob; the manifest names it.
		link := "legacy" + string(rune('a'+i)) + "/layer.tar"
		entries = append(entries, dir(filepath.Dir(link)+"/"), symlink(link, "../"+name))
		manifest.Layers = append(manifest.Layers, link)
	}
	m, err := json.Marshal([]manifestEntry{manifest})
	if err != nil {
		t.Fatal(err)
	}
	// manifest.json last, as some tools write it.
	return tarOf(t, append(entries, file("manifest.json", string(m)))...)
}

// TestLoad: docker load's archive becomes one image: its layers applied
// in order with their whiteouts (a file deleted, a directory made opaque,
// a directory replaced by a file), its config kept for containers, its ID
// the config's digest, its tags given; loading it again only tags it.
func TestLoad(t *testing.T) {
	s, _ := newTestStore(t)
	layer1 := tarOf(t, dir("etc/"), file("etc/a", "a"), file("etc/keep", "k"), dir("d/"), file("d/x", "x"), dir("r/"), file("r/inner", "i"))
	layer2 := tarOf(t, file("etc/.wh.a", ""), dir("d/"), file("d/.wh..wh..opq", ""), file("d/z", "z"), file("r", "now a file"),
		file(".wh.nothing-there", ""))
	config := []byte(`{"created":"2026-01-02T03:04:05Z","architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin","A=1"],"Cmd":["sh","-c","echo hi"],` +
		`"WorkingDir":"/srv","User":"nobody","ExposedPorts":{"80/tcp":{},"53/udp":{}},"Labels":{"l":"v"},"StopSignal":"SIGQUIT","Volumes":{"/data":{}},` +
		`"Healthcheck":{"Test":["CMD","true"],"Interval":5000000000,"Retries":2},"Shell":["/bin/sh","-ec"]},"rootfs":{"type":"layers","diff_ids":[]}}`)
	archive := saveArchive(t, config, []string{"docker.io/library/web:1", "web:latest"}, layer1, layer2)

	// --platform: an image of another platform is skipped, quietly.
	none, err := s.LoadFor(context.Background(), bytes.NewReader(archive), func(os, arch, _ string) bool { return os == "linux" && arch == "arm64" })
	if err != nil || len(none) != 0 {
		t.Errorf("load for arm64 of an amd64 archive: %+v, %v; want nothing", none, err)
	}
	if imgs, _ := s.List(); len(imgs) != 0 {
		t.Errorf("it stored %d images", len(imgs))
	}
	var asked []string
	if some, err := s.LoadFor(context.Background(), bytes.NewReader(archive), func(os, arch, variant string) bool {
		asked = append(asked, os+"/"+arch+"/"+variant)
		return arch == "amd64"
	}); err != nil || len(some) != 1 || !slices.Equal(asked, []string{"linux/amd64/"}) {
		t.Errorf("load for amd64 of an amd64 archive: %+v, %v, platforms asked %q", some, err, asked)
	}
	for _, id := range []string{"web:1", "web:latest"} {
		if _, _, err := s.Remove(id, true, nil); err != nil {
			t.Fatal(err)
		}
	}

	loaded, err := s.Load(context.Background(), bytes.NewReader(archive))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(loaded) != 1 || !slices.Equal(loaded[0].Tags, []string{"web:1", "web:latest"}) {
		t.Fatalf("loaded %+v, want one image tagged web:1 and web:latest", loaded)
	}
	img := loaded[0].Image
	if !img.LastTagTime.IsZero() {
		t.Errorf("a loaded image's LastTagTime %v, want none (moby's load tags without it)", img.LastTagTime)
	}
	if !strings.HasPrefix(img.ID, "sha256:") || img.ID == "" || !img.Created.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("image ID %s, created %v", img.ID, img.Created)
	}
	root := img.RootfsDir
	for p, want := range map[string]string{"etc/keep": "k", "d/z": "z", "r": "now a file"} {
		if b, err := os.ReadFile(filepath.Join(root, p)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", p, b, err, want)
		}
	}
	for _, p := range []string{"etc/a", "etc/.wh.a", "d/x", "d/.wh..wh..opq", ".wh.nothing-there"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("%s is in the image", p)
		}
	}
	want := &Config{User: "nobody", Env: []string{"PATH=/bin", "A=1"}, Cmd: []string{"sh", "-c", "echo hi"}, WorkingDir: "/srv",
		ExposedPorts: []string{"53/udp", "80/tcp"}, Labels: map[string]string{"l": "v"}, StopSignal: "SIGQUIT", Volumes: []string{"/data"},
		Healthcheck: &container.HealthConfig{Test: []string{"CMD", "true"}, Interval: 5 * time.Second, Retries: 2},
		Shell:       []string{"/bin/sh", "-ec"}}
	got, err := s.Get("web:1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got.Config); diff != "" {
		t.Errorf("stored config (-want +got):\n%s", diff)
	}
	again, err := s.Load(context.Background(), bytes.NewReader(saveArchive(t, config, []string{"web:2"}, layer1, layer2)))
	if err != nil || len(again) != 1 || again[0].Image.ID != img.ID || !slices.Contains(again[0].Image.RepoTags, "web:2") {
		t.Errorf("loading it again: %+v, %v; want the same image, tagged web:2 too", again, err)
	} else if !slices.Equal(again[0].Replaced, []string{""}) {
		t.Errorf("loading it again replaced %q, want nothing", again[0].Replaced)
	}
	other := []byte(`{"created":"2026-01-02T03:04:06Z","architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}`)
	if over, err := s.Load(context.Background(), bytes.NewReader(saveArchive(t, other, []string{"web:1"}, layer1))); err != nil || len(over) != 1 || !slices.Equal(over[0].Replaced, []string{img.ID}) {
		t.Errorf("another image tagged web:1: %+v, %v; want %s replaced", over, err, img.ID)
	}

	// Not docker save's: refused by name.
	_, err = s.Load(context.Background(), bytes.NewReader(tarOf(t, file("etc/passwd", "root"))))
	if !errdefs.Is(err, errdefs.KindInvalid) || !strings.Contains(err.Error(), "no manifest.json") {
		t.Errorf("Load of a root file system: %v", err)
	}
	// A whiteout of ".." would delete the tree's parent: refused.
	evil := tarOf(t, dir("x/"), file("x/.wh..", ""))
	if _, err := s.Load(context.Background(), bytes.NewReader(saveArchive(t, []byte(`{"config":{}}`), []string{"evil:1"}, layer1, evil))); !errdefs.Is(err, errdefs.KindInvalid) {
		t.Errorf("a layer with x/.wh..: %v, want it refused", err)
	}
	// A manifest that names a file outside the archive finds nothing.
	m, _ := json.Marshal([]manifestEntry{{Config: "../../../etc/passwd"}})
	if _, err := s.Load(context.Background(), bytes.NewReader(tarOf(t, file("manifest.json", string(m))))); err == nil {
		t.Error("a config outside the archive was read")
	}
}

// TestTag: docker tag moves a tag to the image named (by tag or ID),
// "latest" when none is given.
func TestTag(t *testing.T) {
	s, _ := newTestStore(t)
	a := mustImport(t, s, tarOf(t, file("a", "a")), "a", "")
	b := mustImport(t, s, tarOf(t, file("b", "b")), "b", "")
	if _, err := s.Tag("a", "shop/x", ""); err != nil {
		t.Fatal(err)
	}
	if img, err := s.Get("shop/x"); err != nil || img.ID != a.ID {
		t.Errorf("shop/x = %v, %v; want a", img, err)
	} else if time.Since(img.LastTagTime) > time.Minute {
		t.Errorf("LastTagTime %v, want the tag's time", img.LastTagTime)
	}
	if _, err := s.Tag(b.ID, "shop/x", "latest"); err != nil {
		t.Fatal(err)
	}
	if img, err := s.Get("shop/x:latest"); err != nil || img.ID != b.ID {
		t.Errorf("shop/x moved: %v, %v; want b", img, err)
	}
	if _, err := s.Tag("nope", "y", ""); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Errorf("tag of a missing image: %v", err)
	}
}

// TestLoadChecks: what moby's load refuses, berth refuses — a layer that
// is not the one its config names (else one archive could stand in for
// another image with the same config), a count that does not match, a
// manifest of null, a tag without its tag, another OS, a device in the
// archive — and layers apply as moby applies them: a directory keeps the
// time its last layer gave, an opaque directory hides the lower layer's
// files all the way down.
func TestLoadChecks(t *testing.T) {
	s, _ := newTestStore(t)
	ctx := context.Background()
	good := tarOf(t, file("bin/sh", "GOOD"))
	evil := tarOf(t, file("bin/sh", "EVIL"))
	genuine := saveArchive(t, []byte(`{"config":{}}`), []string{"alpine:3"}, good)
	// The same config (the genuine diff ID) with another layer.
	forged := bytes.Replace(genuine, good, evil, 1)
	if _, err := s.Load(ctx, bytes.NewReader(forged)); !errdefs.Is(err, errdefs.KindInvalid) || !strings.Contains(err.Error(), "invalid diffID for layer 0") {
		t.Errorf("a layer that is not its config's: %v", err)
	}
	if loaded, err := s.Load(ctx, bytes.NewReader(genuine)); err != nil {
		t.Fatal(err)
	} else if b, _ := os.ReadFile(filepath.Join(loaded[0].Image.RootfsDir, "bin/sh")); string(b) != "GOOD" {
		t.Errorf("bin/sh = %q after the genuine load", b)
	}
	manifest := func(m string, more ...entry) []byte {
		return tarOf(t, append(more, file("manifest.json", m))...)
	}
	for name, tc := range map[string]struct {
		archive []byte
		want    string
	}{
		"count":   {manifest(`[{"Config":"c","Layers":["l"]}]`, file("c", `{"rootfs":{"diff_ids":[]}}`), file("l", "")), "layers length mismatch: expected 0, got 1"},
		"null":    {manifest(`null`), "manifest cannot be null"},
		"no tag":  {manifest(`[{"Config":"c","RepoTags":["busybox"]}]`, file("c", `{"rootfs":{"diff_ids":[]}}`)), `invalid tag "busybox"`},
		"windows": {manifest(`[{"Config":"c"}]`, file("c", `{"os":"windows","rootfs":{"diff_ids":[]}}`)), "cannot load windows image on linux"},
		"device": {tarOf(t, entry{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "manifest.json", Devmajor: 1, Devminor: 3, Mode: 0o644}}),
			"is a device or a FIFO"},
	} {
		if _, err := s.Load(ctx, bytes.NewReader(tc.archive)); !errdefs.Is(err, errdefs.KindInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}

	early, late := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	d1, d2 := dir("d/"), dir("d/")
	d1.hdr.ModTime, d2.hdr.ModTime = early, late
	l1 := tarOf(t, d1, dir("d/-sub/"), file("d/-sub/old", "o"), file("d/keep", "k"))
	l2 := tarOf(t, d2, dir("d/-sub/"), file("d/-sub/new", "n"), file("d/.wh..wh..opq", ""), file(".wh..wh.plnk", ""))
	loaded, err := s.Load(ctx, bytes.NewReader(saveArchive(t, []byte(`{"config":{"Cmd":["x"]}}`), []string{"layers:1"}, l1, l2)))
	if err != nil {
		t.Fatal(err)
	}
	root := loaded[0].Image.RootfsDir
	for p, want := range map[string]bool{"d/-sub/new": true, "d/-sub/old": false, "d/keep": false, ".wh..wh.plnk": false} {
		if _, err := os.Lstat(filepath.Join(root, p)); (err == nil) != want {
			t.Errorf("%s there: %v, want %v", p, err == nil, want)
		}
	}
	if fi, err := os.Stat(filepath.Join(root, "d")); err != nil || !fi.ModTime().Equal(late) {
		t.Errorf("d's time %v, %v; want the last layer's %v", fi.ModTime(), err, late)
	}
}

// TestImportAndLoadOfOneTarShareNoTree: an import takes a tar as it is
// (a ".wh." name is a file), a load applies it as a layer (a whiteout):
// the two trees of one tar differ, so they are not shared (the review of
// session 19 found the load reusing the import's tree).
func TestImportAndLoadOfOneTarShareNoTree(t *testing.T) {
	s, _ := newTestStore(t)
	layer := tarOf(t, dir("etc/"), file("etc/keep", "k"), file("etc/.wh.b", ""))
	imported := mustImport(t, s, layer, "imp", "")
	config := []byte(`{"created":"2026-01-02T03:04:05Z","architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}`)
	loaded, err := s.Load(context.Background(), bytes.NewReader(saveArchive(t, config, []string{"ld:1"}, layer)))
	if err != nil {
		t.Fatal(err)
	}
	img := loaded[0].Image
	if img.RootfsDir == imported.RootfsDir {
		t.Fatalf("the loaded image uses the imported one's tree %s", img.RootfsDir)
	}
	if _, err := os.Lstat(filepath.Join(img.RootfsDir, "etc/.wh.b")); !os.IsNotExist(err) {
		t.Errorf("the loaded tree has the whiteout as a file (%v)", err)
	}
	if _, err := os.Lstat(filepath.Join(imported.RootfsDir, "etc/.wh.b")); err != nil {
		t.Errorf("the imported tree lost its .wh.b file: %v", err)
	}
}
