package image

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestCommitRecordsAChild: a commit's image is its parent's layers and
// history with one more (its size in the history, its ID new each time),
// the parent named, the tree the build made, tagged when asked; a commit
// without changes adds a history entry without a layer.
func TestCommitRecordsAChild(t *testing.T) {
	s, dir := newTestStore(t)
	parent := mustImport(t, s, tarOf(t, file("f", "1")), "base", "")
	build := func(diffID string) func(string) (Tree, error) {
		return func(rootfs string) (Tree, error) {
			if err := os.MkdirAll(rootfs, 0o755); err != nil {
				return Tree{}, err
			}
			return Tree{DiffID: diffID, DiffSize: 5, Size: 6}, os.WriteFile(filepath.Join(rootfs, "g"), []byte("hello"), 0o644)
		}
	}
	cfg := &Config{Cmd: []string{"sh"}}
	img, err := s.Commit(CommitSpec{Parent: parent, Config: cfg, Author: "me", Comment: "snap", CreatedBy: "sh -c x",
		ContainerID: "c1", Repo: "app", Tag: "v1"}, build("sha256:d1"))
	if err != nil {
		t.Fatal(err)
	}
	if img.Parent != parent.ID || img.Author != "me" || img.Size != 6 || !cmp.Equal(img.RepoTags, []string{"app:v1"}) ||
		!cmp.Equal(img.Layers, append(parent.Layers, "sha256:d1")) || !cmp.Equal(img.LayerSizes, []int64{parent.Size, 5}) {
		t.Errorf("committed image %+v", img)
	}
	if b, err := os.ReadFile(filepath.Join(img.RootfsDir, "g")); err != nil || string(b) != "hello" || filepath.Dir(filepath.Dir(img.RootfsDir)) != dir {
		t.Errorf("its tree %s: %q, %v", img.RootfsDir, b, err)
	}
	items := img.HistoryItems()
	if len(items) != 2 || items[0].CreatedBy != "sh -c x" || items[0].Comment != "snap" || items[0].Size != 5 || items[1].Size != parent.Size {
		t.Errorf("history %+v", items)
	}
	if got, err := s.Get("app:v1"); err != nil || got.ID != img.ID || !cmp.Equal(got.Config, cfg) {
		t.Errorf("Get(app:v1) = %+v, %v", got, err)
	}

	again, err := s.Commit(CommitSpec{Parent: img, ContainerID: "c2"}, build(EmptyLayer))
	if err != nil {
		t.Fatal(err)
	}
	if again.ID == img.ID || !cmp.Equal(again.Layers, img.Layers) || len(again.History) != 3 || !again.History[2].EmptyLayer {
		t.Errorf("a commit without changes: %+v", again)
	}
	if items := again.HistoryItems(); items[0].Size != 0 || items[1].Size != 5 {
		t.Errorf("its history %+v", items)
	}
	if _, err := s.Commit(CommitSpec{Parent: img, Repo: "Bad"}, build("sha256:d3")); err == nil {
		t.Error("a bad repository name was taken")
	}
}

// TestCommittedChainRemoval: as moby's image store, an image with
// children cannot be deleted (a hard conflict) and loses only its tag to
// a docker rmi by tag; the removal of the last child deletes the untagged
// parents above it; prune leaves an untagged parent with a child alone.
func TestCommittedChainRemoval(t *testing.T) {
	s, _ := newTestStore(t)
	base := mustImport(t, s, tarOf(t, file("f", "1")), "base", "")
	build := func(rootfs string) (Tree, error) { return Tree{DiffID: EmptyLayer}, os.MkdirAll(rootfs, 0o755) }
	mid, err := s.Commit(CommitSpec{Parent: base, ContainerID: "c1"}, build)
	if err != nil {
		t.Fatal(err)
	}
	top, err := s.Commit(CommitSpec{Parent: mid, ContainerID: "c2", Repo: "app", Tag: "v1"}, build)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Remove(mid.ID, true, nil); err == nil || !strings.Contains(err.Error(), "(cannot be forced) - image has dependent child images") {
		t.Errorf("rmi -f of a parent: %v", err)
	}
	untagged, deleted, err := s.Remove("base", false, nil)
	if err != nil || !cmp.Equal(untagged, []string{"base:latest"}) || len(deleted) != 0 {
		t.Errorf("rmi base: %v %v %v; want the tag only", untagged, deleted, err)
	}
	removed, _, err := s.Prune(false, func(*Image) bool { return true }, nil, nil)
	if err != nil || len(removed) != 0 {
		t.Errorf("prune took %v (%v); the untagged parents have a child", removed, err)
	}
	_, deleted, err = s.Remove("app:v1", false, nil)
	if err != nil || !cmp.Equal(deleted, []string{top.ID, mid.ID, base.ID}) {
		t.Errorf("rmi app:v1 deleted %v (%v); want it and its untagged parents", deleted, err)
	}
	if imgs, _ := s.List(); len(imgs) != 0 {
		t.Errorf("left %d images", len(imgs))
	}

	// --no-prune: the image alone; its untagged parent stays.
	b2 := mustImport(t, s, tarOf(t, file("f", "2")), "b2", "")
	child, err := s.Commit(CommitSpec{Parent: b2, ContainerID: "c3", Repo: "app", Tag: "v2"}, build)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Remove("b2", false, nil); err != nil {
		t.Fatal(err)
	}
	if _, deleted, err = s.RemoveNoPrune("app:v2", false, nil); err != nil || !cmp.Equal(deleted, []string{child.ID}) {
		t.Errorf("rmi --no-prune app:v2 deleted %v (%v); want it alone", deleted, err)
	}
	if _, err := s.Get(b2.ID); err != nil {
		t.Errorf("the untagged parent went: %v", err)
	}
}

// TestDeriveAndBuilt: a build's config-only step shares its parent's
// tree, which stays while either image does (the parent cannot go first;
// the child's removal leaves the parent's tree); Built finds the newest
// image of a step key; Adopted sees each new image under the store's lock.
func TestDeriveAndBuilt(t *testing.T) {
	s, _ := newTestStore(t)
	parent := mustImport(t, s, tarOf(t, file("f", "1")), "base", "")
	var adopted []string
	hold := func(img *Image) { adopted = append(adopted, img.ID) }
	child, err := s.Derive(CommitSpec{Parent: parent, Config: &Config{Env: []string{"A=1"}}, CreatedBy: "/bin/sh -c #(nop)  ENV A=1",
		BuildKey: "k1", Adopted: hold})
	if err != nil {
		t.Fatal(err)
	}
	if child.RootfsDir != parent.RootfsDir || child.Parent != parent.ID || !cmp.Equal(child.Layers, parent.Layers) ||
		len(child.History) != 2 || !child.History[1].EmptyLayer || !cmp.Equal(adopted, []string{child.ID}) {
		t.Errorf("derived %+v, adopted %q", child, adopted)
	}
	if got, err := s.Built("k1", nil); err != nil || got == nil || got.ID != child.ID {
		t.Errorf("Built(k1) = %+v, %v", got, err)
	}
	newer, err := s.Derive(CommitSpec{Parent: parent, Config: &Config{}, BuildKey: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Built("k1", nil); err != nil || got == nil || got.ID != newer.ID {
		t.Errorf("Built(k1) after a newer one = %+v, %v; want %s", got, err, newer.ID)
	}
	if got, err := s.Built("k1", func(img *Image) bool { return img.ID == child.ID }); err != nil || got == nil || got.ID != child.ID {
		t.Errorf("Built(k1) of the older one = %+v, %v", got, err)
	}
	if _, _, err := s.Remove(newer.ID, false, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Built("k1", nil); err != nil || got == nil || got.ID != child.ID {
		t.Errorf("Built(k1) after the newer one went = %+v, %v; want %s", got, err, child.ID)
	}
	if got, err := s.Built("k2", nil); err != nil || got != nil {
		t.Errorf("Built(k2) = %+v, %v", got, err)
	}
	if _, _, err := s.Remove(parent.ID, true, nil); err == nil || !strings.Contains(err.Error(), "image has dependent child images") {
		t.Errorf("the parent went before its child: %v", err)
	}
	if _, _, err := s.Remove(child.ID, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(parent.RootfsDir, "f")); err != nil {
		t.Errorf("the child's removal took the parent's tree: %v", err)
	}
	if _, err := s.Derive(CommitSpec{Config: &Config{}}); err == nil {
		t.Error("a derive without a parent")
	}
}
