package api

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	imagetypes "github.com/docker/docker/api/types/image"
	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/internal/runtime/image"
)

func TestImageImport(t *testing.T) {
	tests := []struct {
		name, query, want string
	}{
		{"repo and tag in repo", "fromSrc=-&repo=busybox:1.36&message=hi", `ImportImage busybox:1.36 "hi"`},
		{"separate tag", "fromSrc=-&repo=reg.example:5000/team/app&tag=v1", `ImportImage reg.example:5000/team/app:v1 "Imported from -"`},
		{"default tag", "fromSrc=-&repo=busybox", `ImportImage busybox:latest "Imported from -"`},
		{"untagged", "fromSrc=-", `ImportImage  "Imported from -"`}, // moby: "Imported from " + fromSrc
		{"changes", "fromSrc=-&repo=app&changes=CMD+%5B%22sh%22%5D&changes=ENV+A%3D1", `ImportImage app:latest "Imported from -" ["CMD [\"sh\"]" "ENV A=1"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeBackend()
			req := httptest.NewRequest(http.MethodPost, "/v1.51/images/create?"+tt.query, strings.NewReader("TARBALL"))
			req.Header.Set("Content-Type", "application/x-tar")
			rec := httptest.NewRecorder()
			newServer(f).Handler().ServeHTTP(rec, req)
			wantStatus(t, rec, http.StatusOK)
			if diff := cmp.Diff(`{"status":"sha256:`+hexID("1d")+`"}`+"\r\n", rec.Body.String()); diff != "" {
				t.Errorf("stream (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{tt.want}, f.Mutations()); diff != "" {
				t.Errorf("mutations (-want +got):\n%s", diff)
			}
			if string(f.recorded().ImportedBody) != "TARBALL" {
				t.Errorf("body = %q", f.recorded().ImportedBody)
			}
		})
	}
}

// TestImageImportUnbounded: the tar body is a stream, not a JSON body.
func TestImageImportUnbounded(t *testing.T) {
	f := newFakeBackend()
	body := strings.Repeat("t", 3*maxJSONBody)
	rec := call(t, newServer(f), http.MethodPost, "/images/create?fromSrc=-&repo=big", body)
	wantStatus(t, rec, http.StatusOK)
	if len(f.recorded().ImportedBody) != len(body) {
		t.Errorf("imported %d bytes, want %d", len(f.recorded().ImportedBody), len(body))
	}
}

func TestImageList(t *testing.T) {
	s := newServer(newFakeBackend())
	rec := call(t, s, http.MethodGet, "/v1.51/images/json", "")
	wantStatus(t, rec, http.StatusOK)
	got := decode[[]map[string]any](t, rec)
	want := []map[string]any{{
		"Id": "sha256:" + hexID("b0"), "ParentId": "", "RepoTags": []any{"busybox:latest", "reg.example:5000/team/busybox:1.36"},
		"RepoDigests": []any{}, "Created": float64(fakeTime.Unix()), "Size": float64(2 << 20), "SharedSize": -1.0,
		"Containers": -1.0, "Labels": map[string]any{},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("images (-want +got):\n%s", diff)
	}
	for filter, n := range map[string]int{
		`{"reference":{"busybox":true}}`:      1,
		`{"reference":{"busybox:1.36":true}}`: 0,
		`{"reference":{"*/team/*":true}}`:     1,
		`{"dangling":{"true":true}}`:          0,
		`{"label":{"a":true}}`:                0,
	} {
		rec := call(t, s, http.MethodGet, "/images/json?filters="+urlEscape(filter), "")
		wantStatus(t, rec, http.StatusOK)
		if got := len(decode[[]any](t, rec)); got != n {
			t.Errorf("%s: %d images, want %d", filter, got, n)
		}
	}
}

// TestImageListFiltersAndOrder: moby's before, since, until and label
// filters of docker images (labels of the image's config), newest first.
func TestImageListFiltersAndOrder(t *testing.T) {
	f := newFakeBackend()
	old, mid, recent := f.images[0], &image.Image{
		ID: "sha256:" + hexID("b1"), RepoTags: []string{"app:1"}, Created: fakeTime.Add(time.Hour),
		Config: &image.Config{Labels: map[string]string{"keep": "yes", "team": "web"}},
	}, &image.Image{
		ID: "sha256:" + hexID("b2"), RepoTags: []string{"app:2"}, Created: fakeTime.Add(2 * time.Hour),
		Config: &image.Config{Labels: map[string]string{"team": "db"}},
	}
	f.images = []*image.Image{mid, old, recent}
	s := newServer(f)
	ids := func(filter string) []string {
		t.Helper()
		path := "/images/json"
		if filter != "" {
			path += "?filters=" + urlEscape(filter)
		}
		rec := call(t, s, http.MethodGet, path, "")
		wantStatus(t, rec, http.StatusOK)
		var out []string
		for _, img := range decode[[]imagetypes.Summary](t, rec) {
			out = append(out, img.RepoTags[0])
		}
		return out
	}
	for _, tc := range []struct {
		filter string
		want   []string
	}{
		{"", []string{"app:2", "app:1", "busybox:latest"}},
		{`{"label":{"keep":true}}`, []string{"app:1"}},
		{`{"label":{"team=db":true}}`, []string{"app:2"}},
		{`{"label":{"team":true,"keep=yes":true}}`, []string{"app:1"}},
		{`{"before":{"app:2":true}}`, []string{"app:1", "busybox:latest"}},
		{`{"before":{"app:2":true,"app:1":true}}`, []string{"busybox:latest"}},
		{`{"since":{"busybox":true}}`, []string{"app:2", "app:1"}},
		{`{"since":{"busybox":true},"before":{"app:2":true}}`, []string{"app:1"}},
		{`{"until":{"` + fmt.Sprint(fakeTime.Add(90*time.Minute).Unix()) + `":true}}`, []string{"app:1", "busybox:latest"}},
	} {
		if diff := cmp.Diff(tc.want, ids(tc.filter)); diff != "" {
			t.Errorf("filters %s (-want +got):\n%s", tc.filter, diff)
		}
	}
	rec := call(t, s, http.MethodGet, "/images/json?filters="+urlEscape(`{"before":{"nosuch":true}}`), "")
	wantStatus(t, rec, http.StatusNotFound)
	rec = call(t, s, http.MethodGet, "/images/json", "")
	if got := decode[[]imagetypes.Summary](t, rec)[1].Labels; !cmp.Equal(got, mid.Config.Labels) {
		t.Errorf("app:1's labels in the list = %v, want its config's", got)
	}
}

func TestImageInspectAndRemove(t *testing.T) {
	f := newFakeBackend()
	s := newServer(f)
	for _, path := range []string{"/v1.51/images/busybox/json", "/v1.51/images/reg.example:5000/team/busybox:1.36/json"} {
		rec := call(t, s, http.MethodGet, path, "")
		wantStatus(t, rec, http.StatusOK)
		got := decode[map[string]any](t, rec)
		if got["Id"] != "sha256:"+hexID("b0") || got["Os"] != "linux" || got["Config"] == nil {
			t.Errorf("%s: %v", path, got)
		}
	}
	wantError(t, call(t, s, http.MethodGet, "/v1.51/images/nope/json", ""), http.StatusNotFound, "No such image: nope")
	// ContainerConfig (and VirtualSize before 1.44) for older clients, as
	// moby's: Compose v1 reads it when it recreates a container.
	for _, tc := range []struct {
		version         string
		config, virtual bool
	}{{"1.51", false, false}, {"1.45", false, false}, {"1.44", true, false}, {"1.41", true, true}} {
		got := decode[map[string]any](t, call(t, s, http.MethodGet, "/v"+tc.version+"/images/busybox/json", ""))
		_, config := got["ContainerConfig"]
		_, virtual := got["VirtualSize"]
		if config != tc.config || virtual != tc.virtual {
			t.Errorf("API %s: ContainerConfig %v, VirtualSize %v; want %v, %v", tc.version, config, virtual, tc.config, tc.virtual)
		}
	}
	rec := call(t, s, http.MethodDelete, "/v1.51/images/busybox", "")
	wantStatus(t, rec, http.StatusOK)
	want := `[{"Untagged":"busybox:latest"},{"Deleted":"sha256:` + hexID("b0") + `"}]` + "\n"
	if diff := cmp.Diff(want, rec.Body.String()); diff != "" {
		t.Errorf("delete (-want +got):\n%s", diff)
	}
	wantError(t, call(t, s, http.MethodDelete, "/v1.51/images/nope", ""), http.StatusNotFound, "No such image: nope")
}

// TestRemoveImageNoPrune: docker rmi --no-prune reaches the backend.
func TestRemoveImageNoPrune(t *testing.T) {
	f := newFakeBackend()
	s := newServer(f)
	wantStatus(t, call(t, s, http.MethodDelete, "/v1.51/images/busybox?noprune=1", ""), http.StatusOK)
	if diff := cmp.Diff([]string{"RemoveImage busybox noprune"}, f.Mutations()); diff != "" {
		t.Errorf("mutations (-want +got):\n%s", diff)
	}
}

// TestRefusalsLogged: with the daemon's -D, a refused request (4xx, or a
// 501 for what berth does not do) is logged with its status and reason,
// so that an operator can see why a client failed.
func TestRefusalsLogged(t *testing.T) {
	var buf bytes.Buffer
	s := New(newFakeBackend(), slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	call(t, s, http.MethodGet, "/v1.51/images/nope/json", "")
	call(t, s, http.MethodPost, "/v1.51/images/busybox/push", "")
	for _, want := range []string{
		`msg="api request refused" method=GET path=/images/nope/json status=404 err="No such image: nope"`,
		`msg="api request refused" method=POST path=/images/busybox/push status=501 err="docker push is not supported by berth"`,
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, buf.String())
		}
	}
}

// TestLoadImages: docker load's answer is moby's 200 jsonmessage stream:
// one "Loaded image:" line a tag, the IDs of untagged images after, and a
// failure as an error message in the stream.
func TestLoadImages(t *testing.T) {
	s := newServer(newFakeBackend())
	rec := call(t, s, http.MethodPost, "/v1.51/images/load?quiet=1", "SAVED")
	wantStatus(t, rec, http.StatusOK)
	want := `{"stream":"Loaded image: web:1\n"}` + "\r\n" + `{"stream":"Loaded image ID: sha256:` + hexID("c1") + `\n"}` + "\r\n"
	if got := rec.Body.String(); got != want {
		t.Errorf("body %q, want %q", got, want)
	}
	// A tag taken from another image: moby's line before its own.
	rec = call(t, s, http.MethodPost, "/v1.51/images/load?quiet=1", "SAVED OVER")
	want = `{"stream":"The image web:1 already exists, renaming the old one with ID sha256:` + hexID("c9") + ` to empty string\n"}` + "\r\n" +
		`{"stream":"Loaded image: web:1\n"}` + "\r\n" + `{"stream":"Loaded image: web:2\n"}` + "\r\n"
	if got := rec.Body.String(); got != want {
		t.Errorf("body %q, want %q", got, want)
	}
	rec = call(t, s, http.MethodPost, "/v1.51/images/load?quiet=1", "not a save archive")
	wantStatus(t, rec, http.StatusOK)
	if got := rec.Body.String(); got != `{"error":"invalid archive: no manifest.json","errorDetail":{"message":"invalid archive: no manifest.json"}}`+"\r\n" {
		t.Errorf("failed load's body %q", got)
	}
}

// TestTagImage: docker tag is a 201, as moby's; a missing image a 404.
func TestTagImage(t *testing.T) {
	f := newFakeBackend()
	s := newServer(f)
	wantStatus(t, call(t, s, http.MethodPost, "/v1.51/images/busybox/tag?repo=shop/box&tag=v1", ""), http.StatusCreated)
	if got := f.mutations[len(f.mutations)-1]; got != "TagImage busybox shop/box:v1" {
		t.Errorf("last mutation %q", got)
	}
	wantError(t, call(t, s, http.MethodPost, "/v1.51/images/nope/tag?repo=x", ""), http.StatusNotFound, "No such image: nope")
	wantStatus(t, call(t, s, http.MethodPost, "/v1.51/images/busybox/frobnicate", ""), http.StatusNotFound)
}

// TestSaveImages: docker save's two routes stream the archive; a missing
// image is a 404 before any of it.
func TestSaveImages(t *testing.T) {
	s := newServer(newFakeBackend())
	rec := call(t, s, http.MethodGet, "/v1.51/images/get?names=busybox&names=busybox:latest", "")
	wantStatus(t, rec, http.StatusOK)
	if rec.Body.String() != "ARCHIVE OF busybox busybox:latest" || rec.Header().Get("Content-Type") != "application/x-tar" {
		t.Errorf("save: %q, %q", rec.Body.String(), rec.Header().Get("Content-Type"))
	}
	rec = call(t, s, http.MethodGet, "/v1.51/images/busybox/get", "")
	wantStatus(t, rec, http.StatusOK)
	if rec.Body.String() != "ARCHIVE OF busybox" {
		t.Errorf("save one: %q", rec.Body.String())
	}
	wantError(t, call(t, s, http.MethodGet, "/v1.51/images/get?names=nope", ""), http.StatusNotFound, "No such image: nope")
}

// TestImageConfigView: image inspect's Config carries what a build set,
// SHELL and ONBUILD among it (moby's DockerOCIImageConfig).
func TestImageConfigView(t *testing.T) {
	v := imageConfigView(&image.Config{Shell: []string{"/bin/sh", "-xc"}, OnBuild: []string{"RUN make"}, Cmd: []string{"sh"}})
	if diff := cmp.Diff([]string{"/bin/sh", "-xc"}, v.Shell); diff != "" {
		t.Errorf("Shell (-want +got):\n%s", diff)
	}
	if len(v.OnBuild) != 1 || len(v.Cmd) != 1 {
		t.Errorf("config view %+v", v)
	}
}

// TestImageListDanglingHeads: dangling=true lists untagged images that
// no other image was made from, with -a too (moby's Heads()): an
// intermediate image is shown by -a alone.
func TestImageListDanglingHeads(t *testing.T) {
	f := newFakeBackend()
	mid := &image.Image{ID: "sha256:" + hexID("c1"), Created: fakeTime}
	head := &image.Image{ID: "sha256:" + hexID("c2"), Parent: mid.ID, Created: fakeTime}
	f.images = append(f.images, mid, head)
	s := newServer(f)
	for q, want := range map[string]int{
		"":      2, // busybox and the head
		"all=1": 3,
		"filters=" + urlEscape(`{"dangling":{"true":true}}`):        1,
		"all=1&filters=" + urlEscape(`{"dangling":{"true":true}}`):  1,
		"all=1&filters=" + urlEscape(`{"dangling":{"false":true}}`): 1,
	} {
		rec := call(t, s, http.MethodGet, "/images/json?"+q, "")
		wantStatus(t, rec, http.StatusOK)
		if got := len(decode[[]any](t, rec)); got != want {
			t.Errorf("%s: %d images, want %d", q, got, want)
		}
	}
}

// TestImageLayers: an image of config steps on scratch has no layer; an
// old record without layers or history shows its ID.
func TestImageLayers(t *testing.T) {
	if got := imageLayers(&image.Image{ID: "sha256:x", History: []image.History{{CreatedBy: "CMD", EmptyLayer: true}}}); len(got) != 0 {
		t.Errorf("config steps on scratch: layers %q, want none", got)
	}
	if got := imageLayers(&image.Image{ID: "sha256:x"}); len(got) != 1 || got[0] != "sha256:x" {
		t.Errorf("old record: layers %q", got)
	}
	if got := imageLayers(&image.Image{ID: "sha256:x", Layers: []string{"sha256:l"}}); len(got) != 1 || got[0] != "sha256:l" {
		t.Errorf("layers %q", got)
	}
}

// TestImagePlatforms: docker save and load --platform (API 1.48, a JSON
// OCI platform) and docker import --platform: the host's is taken as if
// not given; another's finds nothing to save (moby's words), loads
// nothing, and is refused at import, berth running every image on the
// host's platform.
func TestImagePlatforms(t *testing.T) {
	f := newFakeBackend()
	s := newServer(f)
	host := urlEscape(`{"os":"linux","architecture":"` + goarch() + `"}`)
	other := urlEscape(`{"os":"linux","architecture":"riscv64"}`)
	rec := call(t, s, http.MethodGet, "/v1.51/images/get?names=busybox&platform="+host, "")
	wantStatus(t, rec, http.StatusOK)
	if rec.Body.String() != "ARCHIVE OF busybox" {
		t.Errorf("save for the host's platform: %q", rec.Body.String())
	}
	wantError(t, call(t, s, http.MethodGet, "/v1.51/images/get?names=busybox&platform="+other, ""),
		http.StatusInternalServerError, "no suitable export target found for platform linux/riscv64")
	wantError(t, call(t, s, http.MethodGet, "/v1.51/images/get?names=busybox&platform="+host+"&platform="+other, ""),
		http.StatusBadRequest, "multiple platform parameters not supported")
	// Before API 1.48 the field is ignored, as moby ignores it.
	wantStatus(t, call(t, s, http.MethodGet, "/v1.47/images/get?names=busybox&platform="+other, ""), http.StatusOK)

	// Load keeps the archive's images of the host's platform; another's
	// is refused, berth keeping no image's platform.
	wantError(t, call(t, s, http.MethodPost, "/v1.51/images/load?quiet=1&platform="+other, "SAVED"),
		http.StatusBadRequest, "berth loads images for the host's platform (linux/"+goarch()+") only, not linux/riscv64: it runs every image there")
	rec = call(t, s, http.MethodPost, "/v1.51/images/load?quiet=1&platform="+host, "SAVED")
	wantStatus(t, rec, http.StatusOK)
	if loaded := strings.Contains(rec.Body.String(), "Loaded image: web:1"); loaded != (goarch() == "amd64") {
		t.Errorf("load for the host's platform of the fake's amd64 archive: %q", rec.Body.String())
	}

	wantError(t, call(t, s, http.MethodPost, "/v1.51/images/create?fromSrc=-&repo=x&platform=linux/riscv64", "TAR"),
		http.StatusBadRequest, "berth imports images for the host's platform (linux/"+goarch()+") only, not linux/riscv64: it runs every image there")
	wantStatus(t, call(t, s, http.MethodPost, "/v1.51/images/create?fromSrc=-&repo=x&platform=linux/"+goarch(), "TAR"), http.StatusOK)
}

// TestLayerSharing: docker system df counts each layer once, and an
// image's layers another image has as its shared size.
func TestLayerSharing(t *testing.T) {
	base := &image.Image{ID: "base", Size: 100, Layers: []string{"a"}, LayerSizes: []int64{100}}
	child := &image.Image{ID: "child", Size: 110, Layers: []string{"a", "b"}, LayerSizes: []int64{100, 10}}
	other := &image.Image{ID: "other", Size: 50, Layers: []string{"c"}, LayerSizes: []int64{50}}
	old := &image.Image{ID: "old", Size: 7}
	shrunk := &image.Image{ID: "shrunk", Size: 30, Layers: []string{"a", "d"}, LayerSizes: []int64{100, 0}}
	// The same diff on another base is another layer (moby's chain IDs).
	rebased := &image.Image{ID: "rebased", Size: 60, Layers: []string{"c", "b"}, LayerSizes: []int64{50, 10}}
	shared, total := layerSharing([]*image.Image{base, child, other, old, shrunk, rebased})
	if total != 100+10+50+7+0+10 {
		t.Errorf("LayersSize %d, want %d", total, 100+10+50+7+0+10)
	}
	for img, want := range map[*image.Image]int64{base: 100, child: 100, other: 50, old: 0, shrunk: 30, rebased: 50} {
		if shared[img] != want {
			t.Errorf("%s: SharedSize %d, want %d", img.ID, shared[img], want)
		}
	}
}
