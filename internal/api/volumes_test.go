package api

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestVolumeRoutes: docker volume's requests answer as moby's: create
// 201 (and the same volume again for its name), inspect, ls with its
// filters, rm 204 (a missing one passes with force), prune of the
// anonymous ones by default.
func TestVolumeRoutes(t *testing.T) {
	f := newFakeBackend()
	s := newServer(f)
	rec := call(t, s, http.MethodPost, "/v1.51/volumes/create", `{"Name":"data","Labels":{"com.docker.compose.project":"p"}}`)
	wantStatus(t, rec, http.StatusCreated)
	if got := rec.Body.String(); !strings.Contains(got, `"Driver":"local"`) || !strings.Contains(got, `"Mountpoint":"/var/lib/berth/volumes/data/_data"`) || !strings.Contains(got, `"Scope":"local"`) {
		t.Errorf("create: %s", got)
	}
	call(t, s, http.MethodPost, "/v1.51/volumes/create", `{"Name":"anon1","Labels":{"com.docker.volume.anonymous":""}}`)
	wantError(t, call(t, s, http.MethodPost, "/v1.51/volumes/create", `{"Name":"x","Driver":"nfs"}`), http.StatusNotFound, `plugin "nfs" not found`)
	wantStatus(t, call(t, s, http.MethodGet, "/v1.51/volumes/data", ""), http.StatusOK)
	wantError(t, call(t, s, http.MethodGet, "/v1.51/volumes/nope", ""), http.StatusNotFound, "get nope: no such volume")
	rec = call(t, s, http.MethodGet, "/v1.51/volumes?filters="+url.QueryEscape(`{"label":{"com.docker.compose.project=p":true}}`), "")
	if got := rec.Body.String(); !strings.Contains(got, `"Name":"data"`) || strings.Contains(got, "anon1") {
		t.Errorf("ls by label: %s", got)
	}
	rec = call(t, s, http.MethodPost, "/v1.51/volumes/prune", "")
	if got := strings.TrimSpace(rec.Body.String()); got != `{"VolumesDeleted":["anon1"],"SpaceReclaimed":1}` {
		t.Errorf("prune: %s", got)
	}
	wantStatus(t, call(t, s, http.MethodDelete, "/v1.51/volumes/data", ""), http.StatusNoContent)
	wantError(t, call(t, s, http.MethodDelete, "/v1.51/volumes/data", ""), http.StatusNotFound, "get data: no such volume")
	wantStatus(t, call(t, s, http.MethodDelete, "/v1.51/volumes/data?force=1", ""), http.StatusNoContent)
}

// Prune's all filter is read as moby's withPrune reads it, errors
// included, and a client older than API 1.42 prunes named volumes too,
// as moby keeps for them.
func TestVolumePruneAllFilter(t *testing.T) {
	s := newServer(newFakeBackend())
	call(t, s, http.MethodPost, "/v1.51/volumes/create", `{"Name":"named"}`)
	prune := func(version, filters string) *httptest.ResponseRecorder {
		path := "/" + version + "/volumes/prune"
		if filters != "" {
			path += "?filters=" + url.QueryEscape(filters)
		}
		return call(t, s, http.MethodPost, path, "")
	}
	wantError(t, prune("v1.51", `{"all":{"maybe":true}}`), http.StatusBadRequest, `invalid filter 'all': strconv.ParseBool: parsing "maybe": invalid syntax`)
	wantError(t, prune("v1.51", `{"all":{"true":true,"1":true}}`), http.StatusBadRequest, `invalid filter 'all=[1 true]': only one value is expected`)
	if got := strings.TrimSpace(prune("v1.51", "").Body.String()); got != `{"VolumesDeleted":null,"SpaceReclaimed":0}` {
		t.Errorf("prune at 1.51 took a named volume: %s", got)
	}
	if got := strings.TrimSpace(prune("v1.41", "").Body.String()); got != `{"VolumesDeleted":["named"],"SpaceReclaimed":1}` {
		t.Errorf("prune at 1.41: %s, want the named volume pruned", got)
	}
}
