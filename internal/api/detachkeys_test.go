package api

import (
	"bytes"
	"net/http"
	"testing"
)

// Detach keys are read as moby's term.ToBytes reads them, and a bad
// sequence is refused in moby's words, on attach and on exec create.
func TestDetachKeys(t *testing.T) {
	for keys, want := range map[string][]byte{
		"ctrl-p,ctrl-q": {16, 17},
		"a,ctrl-@,DEL":  {'a', 0, 127},
		"ctrl-[,ctrl-_": {27, 31},
	} {
		if got, err := detachKeys(keys); err != nil || !bytes.Equal(got, want) {
			t.Errorf("detachKeys(%q) = %v, %v; want %v", keys, got, err, want)
		}
	}
	for _, bad := range []string{"notakey", "ctrl-", "ctrl-1", "ctrl-pp", "a,,b"} {
		if _, err := detachKeys(bad); err == nil {
			t.Errorf("detachKeys(%q) took it", bad)
		}
	}
	s := newServer(newFakeBackend())
	wantError(t, call(t, s, http.MethodPost, "/v1.51/containers/test1/attach?stream=1&detachKeys=notakey", ""), http.StatusBadRequest, "Invalid detach keys (notakey) provided")
	wantError(t, call(t, s, http.MethodPost, "/v1.51/containers/test1/exec", `{"Cmd":["true"],"DetachKeys":"ctrl-"}`), http.StatusBadRequest, "Invalid escape keys (ctrl-) provided")
}
