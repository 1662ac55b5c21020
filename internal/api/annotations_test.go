package api

import (
	"maps"
	"net/http"
	"testing"

	ctypes "github.com/docker/docker/api/types/container"

	"github.com/berth-net/berth/internal/container"
)

// TestAnnotations: docker run --annotation is taken (it was refused), kept
// for the runtime and shown by inspect; an empty key is refused in moby's
// words.
func TestAnnotations(t *testing.T) {
	f := newFakeBackend()
	s := newServer(f)
	rec := call(t, s, http.MethodPost, "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"Annotations":{"com.example.team":"net"}}}`)
	wantStatus(t, rec, http.StatusCreated)
	want := map[string]string{"com.example.team": "net"}
	if got := f.recorded().ContainerCreate.Annotations; !maps.Equal(got, want) {
		t.Errorf("recorded annotations %v, want %v", got, want)
	}
	if got := hostConfig(container.Config{Annotations: want}, nil).Annotations; !maps.Equal(got, want) {
		t.Errorf("inspect's HostConfig.Annotations %v", got)
	}
	wantError(t, call(t, s, http.MethodPost, "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"Annotations":{"":"x"}}}`),
		http.StatusBadRequest, "invalid Annotations: the empty string is not permitted as an annotation key")
	// Before API 1.43 moby drops them.
	wantStatus(t, call(t, s, http.MethodPost, "/v1.42/containers/create?name=old", `{"Image":"busybox","HostConfig":{"Annotations":{"a":"b"}}}`), http.StatusCreated)
	if got := f.recorded().ContainerCreate.Annotations; got != nil {
		t.Errorf("annotations through API 1.42: %v", got)
	}
}

// TestAnnotationsListed: docker ps's HostConfig has the annotations from
// API 1.46, as moby's list.
func TestAnnotationsListed(t *testing.T) {
	f := newFakeBackend()
	f.containers[0].Config.Annotations = map[string]string{"team": "net"}
	s := newServer(f)
	for v, want := range map[string]int{"1.51": 1, "1.46": 1, "1.45": 0} {
		for _, sum := range decode[[]ctypes.Summary](t, call(t, s, http.MethodGet, "/v"+v+"/containers/json?all=1", "")) {
			if sum.ID == f.containers[0].ID && len(sum.HostConfig.Annotations) != want {
				t.Errorf("API %s: HostConfig.Annotations %v", v, sum.HostConfig.Annotations)
			}
		}
	}
}

// TestCgroupParentOption: --cgroup-parent is taken (it was refused) and
// shown by inspect; a relative one is refused by name.
func TestCgroupParentOption(t *testing.T) {
	f := newFakeBackend()
	s := newServer(f)
	wantStatus(t, call(t, s, http.MethodPost, "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"CgroupParent":"/team"}}`), http.StatusCreated)
	if got := f.recorded().ContainerCreate.CgroupParent; got != "/team" {
		t.Errorf("recorded cgroup parent %q", got)
	}
	if got := hostConfig(container.Config{CgroupParent: "/team"}, nil).CgroupParent; got != "/team" {
		t.Errorf("inspect's HostConfig.CgroupParent %q", got)
	}
	wantError(t, call(t, s, http.MethodPost, "/v1.51/containers/create", `{"Image":"busybox","HostConfig":{"CgroupParent":"team"}}`),
		http.StatusBadRequest, `--cgroup-parent "team": berth takes an absolute cgroup path, such as /mygroup`)
}
