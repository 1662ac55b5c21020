package image

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/internal/errdefs"
)

func TestGetByEveryRefForm(t *testing.T) {
	s, _ := newTestStore(t)
	img := mustImport(t, s, tarOf(t, file("f", "1")), "web", "v1")
	other := mustImport(t, s, tarOf(t, file("f", "2")), "localhost:5000/team/web", "")
	hex := img.ID[7:]
	for _, ref := range []string{"web:v1", "docker.io/library/web:v1", img.ID, hex, hex[:12], "sha256:" + hex[:5]} {
		got, err := s.Get(ref)
		if err != nil || got.ID != img.ID {
			t.Errorf("Get(%q) = %v, %v; want %s", ref, got, err, img.ID)
		}
	}
	for _, ref := range []string{"localhost:5000/team/web", "localhost:5000/team/web:latest"} {
		if got, err := s.Get(ref); err != nil || got.ID != other.ID {
			t.Errorf("Get(%q) = %v, %v; want %s", ref, got, err, other.ID)
		}
	}
	// A missing name is named with its tag, as moby's ErrImageDoesNotExist
	// names it; other references as given.
	for ref, want := range map[string]string{"web": "web:latest", "web:v2": "web:v2", "nothere": "nothere:latest",
		"docker.io/library/nothere": "nothere:latest", "sha256:zz": "sha256:zz", "ffffffffffff": "ffffffffffff:latest", "Web:v1": "Web:v1", "": ""} {
		_, err := s.Get(ref)
		if !errdefs.Is(err, errdefs.KindNotFound) || err.Error() != "No such image: "+want {
			t.Errorf("Get(%q) err = %v, want NotFound %q", ref, err, "No such image: "+want)
		}
	}
}

func TestGetAmbiguousPrefix(t *testing.T) {
	s, _ := newTestStore(t)
	// 32 imports make a shared first hex digit certain.
	seen := map[byte]bool{}
	var shared byte
	for i := 0; i < 32 && shared == 0; i++ {
		img := mustImport(t, s, tarOf(t, file("f", string(rune('a'+i)))), "", "")
		if seen[img.ID[7]] {
			shared = img.ID[7]
		}
		seen[img.ID[7]] = true
	}
	if _, err := s.Get(string(shared)); !errdefs.Is(err, errdefs.KindInvalid) {
		t.Errorf("Get(%q) err = %v, want Invalid (ambiguous)", string(shared), err)
	}
}

func TestRemove(t *testing.T) {
	never := func(string) Users { return Users{} }
	running := func(string) Users { return Users{Running: "c1"} }
	stopped := func(string) Users { return Users{Stopped: "c2"} }
	building := func(string) Users { return Users{Build: true} }
	type step struct {
		ref          string
		force        bool
		inUse        func(string) Users
		untagged     []string
		deleted      bool
		conflict     string   // the error's text, when a conflict
		tagsAfter    []string // nil: the image is gone
		wantNotFound bool
	}
	for _, tc := range []struct {
		name  string
		tags  []string // imported as these, in order
		steps []step
	}{
		{"last tag deletes", []string{"a"}, []step{
			{ref: "a", inUse: never, untagged: []string{"a:latest"}, deleted: true},
		}},
		{"one of two tags untags", []string{"a", "b:v1"}, []step{
			{ref: "b:v1", inUse: never, untagged: []string{"b:v1"}, tagsAfter: []string{"a:latest"}},
			{ref: "b:v1", inUse: never, wantNotFound: true, tagsAfter: []string{"a:latest"}},
		}},
		{"ID with two tags needs force", []string{"a", "b"}, []step{
			{ref: "ID", inUse: never, conflict: "(must be forced) - image is referenced in multiple repositories", tagsAfter: []string{"a:latest", "b:latest"}},
			{ref: "ID", force: true, inUse: never, untagged: []string{"a:latest", "b:latest"}, deleted: true},
		}},
		{"used image keeps last tag", []string{"a"}, []step{
			{ref: "a", inUse: stopped, conflict: `unable to remove repository reference "a" (must force) - container c2 is using its referenced image`, tagsAfter: []string{"a:latest"}},
			{ref: "a", force: true, inUse: stopped, untagged: []string{"a:latest"}, tagsAfter: []string{}},
		}},
		{"running container's last tag goes only with force", []string{"a"}, []step{
			{ref: "a", inUse: running, conflict: "(must force) - container c1 is using", tagsAfter: []string{"a:latest"}},
			{ref: "a", force: true, inUse: running, untagged: []string{"a:latest"}, tagsAfter: []string{}},
		}},
		{"running container's image cannot be forced", []string{"a", "b"}, []step{
			// Before the several tags: moby checks the hard conflict first.
			{ref: "ID", inUse: running, conflict: "(cannot be forced) - image is being used by running container c1", tagsAfter: []string{"a:latest", "b:latest"}},
			{ref: "ID", force: true, inUse: running, conflict: "(cannot be forced) - image is being used by running container c1", tagsAfter: []string{"a:latest", "b:latest"}},
		}},
		{"stopped container's image by ID: forced, untagged and kept", []string{"a"}, []step{
			{ref: "ID", inUse: stopped, conflict: "(must be forced) - image is being used by stopped container c2", tagsAfter: []string{"a:latest"}},
			{ref: "ID", force: true, inUse: stopped, untagged: []string{"a:latest"}, tagsAfter: []string{}},
			{ref: "ID", force: true, inUse: stopped, conflict: "(cannot be forced) - image is being used by stopped container c2 (berth keeps", tagsAfter: []string{}},
			{ref: "ID", inUse: stopped, conflict: "(cannot be forced) - image is being used by stopped container c2 (berth keeps an image's files while a container uses them: remove the container first)", tagsAfter: []string{}},
			{ref: "ID", force: true, inUse: never, untagged: []string{}, deleted: true},
		}},
		{"a running build's image stays", []string{"a"}, []step{
			{ref: "a", inUse: building, conflict: `unable to remove repository reference "a" (must force) - a running build is using its referenced image`, tagsAfter: []string{"a:latest"}},
			{ref: "ID", force: true, inUse: building, conflict: "(cannot be forced) - image is being used by a running build", tagsAfter: []string{"a:latest"}},
			{ref: "a", force: true, inUse: building, untagged: []string{"a:latest"}, tagsAfter: []string{}},
		}},
		{"untagged by ID", []string{""}, []step{
			{ref: "ID", inUse: nil, untagged: []string{}, deleted: true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, dir := newTestStore(t)
			img := mustImport(t, s, tarOf(t, file("f", "same")), tc.tags[0], "")
			for _, tag := range tc.tags[1:] {
				repo, tg, _ := strings.Cut(tag, ":")
				if _, err := s.Tag(img.ID, repo, tg); err != nil {
					t.Fatal(err)
				}
			}
			for i, st := range tc.steps {
				ref := st.ref
				if ref == "ID" {
					ref = img.ID[7:19]
				}
				untagged, deleted, err := s.Remove(ref, st.force, st.inUse)
				switch {
				case st.wantNotFound:
					if !errdefs.Is(err, errdefs.KindNotFound) {
						t.Fatalf("step %d: err = %v, want NotFound", i, err)
					}
				case st.conflict != "":
					if !errdefs.Is(err, errdefs.KindConflict) || !strings.Contains(err.Error(), st.conflict) {
						t.Fatalf("step %d: err = %v, want a Conflict with %q", i, err, st.conflict)
					}
				case err != nil:
					t.Fatalf("step %d: %v", i, err)
				default:
					var wantDeleted []string
					if st.deleted {
						wantDeleted = []string{img.ID}
					}
					if diff := cmp.Diff(st.untagged, untagged); diff != "" {
						t.Errorf("step %d untagged (-want +got):\n%s", i, diff)
					}
					if diff := cmp.Diff(wantDeleted, deleted); diff != "" {
						t.Errorf("step %d deleted (-want +got):\n%s", i, diff)
					}
				}
				got, err := s.Get(img.ID)
				if st.tagsAfter == nil && !st.wantNotFound {
					if err == nil {
						t.Errorf("step %d: image still there: %v", i, got)
					}
					if _, err := os.Stat(filepath.Join(dir, img.ID[7:])); !os.IsNotExist(err) {
						t.Errorf("step %d: image files still there: %v", i, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("step %d: image gone: %v", i, err)
				}
				if diff := cmp.Diff(st.tagsAfter, got.RepoTags); diff != "" {
					t.Errorf("step %d tags (-want +got):\n%s", i, diff)
				}
			}
		})
	}
}

// TestPrune: docker image prune removes untagged images no container
// uses; -a also tagged ones, with all their tags; match filters.
func TestPrune(t *testing.T) {
	s, _ := newTestStore(t)
	dangling := mustImport(t, s, tarOf(t, file("f", "1")), "", "")
	usedDangling := mustImport(t, s, tarOf(t, file("f", "2")), "", "")
	tagged := mustImport(t, s, tarOf(t, file("f", "3")), "web", "v1")
	if _, err := s.Tag(tagged.ID, "web", "v2"); err != nil { // a second tag of tagged
		t.Fatal(err)
	}
	usedTagged := mustImport(t, s, tarOf(t, file("f", "4")), "db", "")
	inUse := func(id string) Users {
		if id == usedDangling.ID || id == usedTagged.ID {
			return Users{Stopped: "c1"}
		}
		return Users{}
	}
	all := func(*Image) bool { return true }

	removed, reclaimed, err := s.Prune(false, all, inUse, nil)
	if err != nil || !cmp.Equal(removed, []Removed{{Deleted: dangling.ID}}) || reclaimed != dangling.Size {
		t.Fatalf("Prune(dangling) = %v, %d, %v; want only %s", removed, reclaimed, err, dangling.ID)
	}
	removed, _, err = s.Prune(true, func(img *Image) bool { return img.ID != tagged.ID }, inUse, nil)
	if err != nil || len(removed) != 0 {
		t.Fatalf("Prune(-a, not web) = %v, %v; want nothing (the rest is used)", removed, err)
	}
	removed, _, err = s.Prune(true, all, inUse, nil)
	if want := []Removed{{Untagged: "web:v1"}, {Untagged: "web:v2"}, {Deleted: tagged.ID}}; err != nil || !cmp.Equal(removed, want) {
		t.Fatalf("Prune(-a) = %v, %v; want web's tags and then its image: %v", removed, err, want)
	}
	left, _ := s.List()
	if len(left) != 2 {
		t.Errorf("%d images left, want the 2 in use", len(left))
	}
}
