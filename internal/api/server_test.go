package api

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/container"
)

func TestListenUnix(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "berth.sock")

	// A stale socket file from a crashed daemon is replaced.
	stale, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	l, err := ListenUnix(sock, os.Getgid())
	if err != nil {
		t.Fatalf("ListenUnix over a stale socket: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("mode = %v, want a socket with 0660", fi.Mode())
	}

	// A live socket is not stolen.
	if _, err := ListenUnix(sock, -1); err == nil {
		t.Error("ListenUnix took over a socket another server listens on")
	}

	// Nor is a file that is not a socket removed.
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ListenUnix(plain, -1); err == nil {
		t.Error("ListenUnix replaced a regular file")
	}
	if _, err := os.Stat(plain); err != nil {
		t.Errorf("regular file gone: %v", err)
	}
}

// panicky panics in one Backend call to check the 500 and the server survives.
type panicky struct{ *fakeBackend }

func (panicky) Containers(context.Context) ([]*container.Container, error) { panic("boom") }

func TestPanicIs500(t *testing.T) {
	s := New(panicky{newFakeBackend()}, nil)
	rec := call(t, s, http.MethodGet, "/containers/json", "")
	wantStatus(t, rec, http.StatusInternalServerError)
	if msg := decode[errorResponse](t, rec).Message; msg != "internal error in GET /containers/json: boom" {
		t.Errorf("message = %q", msg)
	}
	wantStatus(t, call(t, s, http.MethodGet, "/_ping", ""), http.StatusOK)
}

type brokenInfo struct{ *fakeBackend }

func (brokenInfo) SystemInfo(context.Context) (SystemInfo, error) {
	return SystemInfo{}, errors.New("store closed")
}

func TestVersionWithoutBackend(t *testing.T) {
	rec := call(t, New(brokenInfo{newFakeBackend()}, nil), http.MethodGet, "/version", "")
	wantStatus(t, rec, http.StatusOK)
	wantError(t, call(t, New(brokenInfo{newFakeBackend()}, nil), http.MethodGet, "/info", ""), http.StatusInternalServerError, "store closed")
}

// TestUploadRefusalLogged: a refused upload (docker cp into a container
// that is not there) is logged at info, where a client writing its body
// may see only a broken pipe; other refusals stay at debug.
func TestUploadRefusalLogged(t *testing.T) {
	var logged bytes.Buffer
	s := New(newFakeBackend(), slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelInfo})))
	rec := call(t, s, http.MethodPut, "/v1.51/containers/nope/archive?path=/", "not a tar")
	if rec.Code < 400 || rec.Code >= 500 {
		t.Fatalf("status %d", rec.Code)
	}
	call(t, s, http.MethodGet, "/v1.51/containers/nope/json", "")
	if got := logged.String(); !strings.Contains(got, "api upload refused") || !strings.Contains(got, "/containers/nope/archive") || strings.Contains(got, "/containers/nope/json") {
		t.Errorf("log at info:\n%s", got)
	}
}
