package api

import (
	"net/http"
	"slices"
	"testing"
	"time"

	imagetypes "github.com/docker/docker/api/types/image"
	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/internal/runtime/image"
)

// TestCommitRequest: docker commit's query and body as moby's postCommit
// reads them: pause unless pause says otherwise, repeated changes, the repository checked first, the
// docker CLI's null body as no config, a config's fields kept; 201 with
// the ID.
func TestCommitRequest(t *testing.T) {
	f := newFakeBackend()
	s := newServer(f)
	rec := call(t, s, http.MethodPost, "/v1.51/commit?container=test1&repo=app&tag=v1&author=me&comment=snap&changes=CMD+%5B%22sh%22%5D&changes=ENV+A%3D1", "null")
	wantStatus(t, rec, http.StatusCreated)
	if got := rec.Body.String(); got != `{"Id":"sha256:`+hexID("c0")+`"}`+"\n" {
		t.Errorf("body %s", got)
	}
	want := CommitOptions{Changes: []string{`CMD ["sh"]`, "ENV A=1"}, Author: "me", Comment: "snap", Repo: "app", Tag: "v1", Pause: true}
	if diff := cmp.Diff(want, f.recorded().Commit); diff != "" || f.recorded().CommitRef != "test1" {
		t.Errorf("commit of %q (-want +got):\n%s", f.recorded().CommitRef, diff)
	}
	for _, tc := range []struct {
		path  string
		pause bool
	}{{"/v1.51/commit?container=test1&pause=0", false}, {"/v1.51/commit?container=test1&pause=false", false}, {"/v1.24/commit?container=test1&pause=1", true}} {
		wantStatus(t, call(t, s, http.MethodPost, tc.path, ""), http.StatusCreated)
		if got := f.recorded().Commit.Pause; got != tc.pause {
			t.Errorf("%s: pause %v, want %v", tc.path, got, tc.pause)
		}
	}
	wantStatus(t, call(t, s, http.MethodPost, "/v1.51/commit?container=test1", `{"Cmd":["top"],"ExposedPorts":{"80/tcp":{}},"Volumes":{"/data":{}}}`), http.StatusCreated)
	if c := f.recorded().Commit.Config; c == nil || !cmp.Equal(c.Cmd, []string{"top"}) || !cmp.Equal(c.ExposedPorts, []string{"80/tcp"}) || !cmp.Equal(c.Volumes, []string{"/data"}) {
		t.Errorf("the body's config: %+v", c)
	}
	// No repository: the tag is ignored, as moby's RepoTagReference.
	wantStatus(t, call(t, s, http.MethodPost, "/v1.51/commit?container=test1&tag=v2", ""), http.StatusCreated)
	if c := f.recorded().Commit; c.Repo != "" || c.Tag != "" {
		t.Errorf("a tag without a repository: %+v", c)
	}
	before := len(f.Mutations())
	wantError(t, call(t, s, http.MethodPost, "/v1.51/commit?container=test1&repo=Bad", ""), http.StatusBadRequest, "invalid reference format: repository name (library/Bad) must be lowercase")
	wantError(t, call(t, s, http.MethodPost, "/v1.51/commit?container=nope", ""), http.StatusNotFound, "No such container: nope")
	if len(f.Mutations()) != before {
		t.Errorf("refused commits reached the backend: %v", f.Mutations()[before:])
	}
}

// TestImageHistory: docker history as moby's ImageHistory: newest first,
// each entry that made a layer with that layer's size, the newest with the
// image's ID and tags, the one before with its parent's, the rest
// "<missing>"; an image without a recorded history one entry per layer.
func TestImageHistory(t *testing.T) {
	f := newFakeBackend()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	base := &image.Image{ID: "sha256:" + hexID("ba"), RepoTags: []string{"base:1"}, Created: t0, Layers: []string{"sha256:l1"},
		LayerSizes: []int64{4000}, History: []image.History{
			{Created: t0, CreatedBy: "ADD rootfs.tar /"},
			{Created: t0.Add(time.Second), CreatedBy: `CMD ["sh"]`, EmptyLayer: true},
		}}
	child := &image.Image{ID: "sha256:" + hexID("c1"), RepoTags: []string{}, Parent: base.ID, Created: t0.Add(time.Hour),
		Layers: []string{"sha256:l1", "sha256:l2"}, LayerSizes: []int64{4000, 12}, History: append(base.History,
			image.History{Created: t0.Add(time.Hour), CreatedBy: "sh -c echo hi > /f", Comment: "snap"})}
	old := &image.Image{ID: "sha256:" + hexID("01d"), RepoTags: []string{"old:latest"}, Created: t0, Size: 77, Comment: "Imported from -"}
	f.images = append(f.images, base, child, old)
	s := newServer(f)
	got := decode[[]imagetypes.HistoryResponseItem](t, call(t, s, http.MethodGet, "/v1.51/images/"+child.ID+"/history", ""))
	want := []imagetypes.HistoryResponseItem{
		{ID: child.ID, Created: t0.Add(time.Hour).Unix(), CreatedBy: "sh -c echo hi > /f", Comment: "snap", Size: 12},
		{ID: base.ID, Tags: []string{"base:1"}, Created: t0.Add(time.Second).Unix(), CreatedBy: `CMD ["sh"]`},
		{ID: "<missing>", Created: t0.Unix(), CreatedBy: "ADD rootfs.tar /", Size: 4000},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	got = decode[[]imagetypes.HistoryResponseItem](t, call(t, s, http.MethodGet, "/v1.51/images/old/history", ""))
	want = []imagetypes.HistoryResponseItem{{ID: old.ID, Tags: []string{"old:latest"}, Created: t0.Unix(), Comment: "Imported from -", Size: 77}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("history of an image without one recorded (-want +got):\n%s", diff)
	}
	wantError(t, call(t, s, http.MethodGet, "/v1.51/images/nope/history", ""), http.StatusNotFound, "No such image: nope")

	// An entry without a time is moby's 0, not Go's zero time in seconds.
	undated := &image.Image{ID: "sha256:" + hexID("0da7e"), RepoTags: []string{"undated:1"}, Layers: []string{"sha256:l1"},
		History: []image.History{{CreatedBy: "ADD x /"}}}
	f.images = append(f.images, undated)
	got = decode[[]imagetypes.HistoryResponseItem](t, call(t, s, http.MethodGet, "/v1.51/images/undated:1/history", ""))
	if len(got) != 1 || got[0].Created != 0 {
		t.Errorf("an entry without a time: %+v", got)
	}

	// docker images hides an untagged image another was committed from
	// (an intermediate one) unless -a.
	base.RepoTags = []string{}
	list := func(q string) (ids []string) {
		for _, sum := range decode[[]imagetypes.Summary](t, call(t, s, http.MethodGet, "/v1.51/images/json"+q, "")) {
			ids = append(ids, sum.ID)
		}
		return ids
	}
	if ids := list(""); slices.Contains(ids, base.ID) || !slices.Contains(ids, child.ID) {
		t.Errorf("docker images: %v; want the child, not its untagged parent", ids)
	}
	if ids := list("?all=1"); !slices.Contains(ids, base.ID) {
		t.Errorf("docker images -a: %v; want the untagged parent too", ids)
	}
}
