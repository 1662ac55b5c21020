package api

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/berth-net/berth/internal/network"
)

func TestExplainRoute(t *testing.T) {
	f := newFakeBackend()
	s := newServer(f)
	rec := call(t, s, http.MethodGet, "/v1.47/berth/explain?from=198.51.100.7&to=web&port=80&proto=tcp&in=eth0&ipv6=1", "")
	wantStatus(t, rec, http.StatusOK)
	want := network.ExplainRequest{From: "198.51.100.7", To: "web", Proto: "tcp", Port: 80, In: "eth0", IPv6: true}
	if got := f.recorded().Explain; got != want {
		t.Errorf("backend asked %+v, want %+v", got, want)
	}
	var ex map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &ex); err != nil {
		t.Fatal(err)
	}
	dec, _ := ex["Decision"].(map[string]any)
	if ex["Outcome"] != "dropped" || ex["From"] != "198.51.100.7" || dec["Chain"] != "direct__berth0" {
		t.Errorf("answer %s", rec.Body)
	}

	for _, tc := range []struct{ query, msg string }{
		{"to=web", "explain needs from and to"},
		{"from=host", "explain needs from and to"},
		{"from=host&to=web&port=70000", "invalid port 70000: 1 to 65535"},
		{"from=host&to=web&port=x", `invalid value for port: "x"`},
	} {
		wantError(t, call(t, s, http.MethodGet, "/berth/explain?"+tc.query, ""), http.StatusBadRequest, tc.msg)
	}
	wantError(t, call(t, s, http.MethodGet, "/berth/explain?from=ghost&to=web", ""), http.StatusNotFound, "No such container: ghost")
	wantStatus(t, call(t, s, http.MethodPost, "/berth/explain?from=host&to=web", ""), http.StatusNotFound)
}
