package testworld

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-net/berth/internal/nstest"
)

// ComposeEnv names the environment variable that holds the path of the
// Docker Compose CLI plugin (docker compose, v5) the Compose tests drive;
// scripts/test builds it (berth_ensure_compose) and sets it.
const ComposeEnv = "BERTH_COMPOSE"

// RequireCompose fails the test under CI=true, and skips it elsewhere,
// when no Compose plugin is named in ComposeEnv.
func RequireCompose(t testing.TB) {
	t.Helper()
	p := os.Getenv(ComposeEnv)
	if p == "" {
		nstest.Unavailable(t, "no docker compose plugin: "+ComposeEnv+" is unset (scripts/test builds one)")
		return
	}
	if _, err := os.Stat(p); err != nil {
		nstest.Unavailable(t, "the docker compose plugin in "+ComposeEnv+" is missing: "+err.Error())
	}
}

// Compose runs `docker compose ARGS...` as a user types it: the docker
// CLI against the world's daemon, finding Compose among the CLI plugins
// of the world's own docker config directory (a link to the plugin in
// ComposeEnv, made on first use).
func (w *World) Compose(t testing.TB, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	RequireCompose(t)
	plugins := filepath.Join(w.Dir, "docker-config", "cli-plugins")
	link := filepath.Join(plugins, "docker-compose")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		t.Fatalf("make %s: %v", plugins, err)
	}
	if err := os.Symlink(os.Getenv(ComposeEnv), link); err != nil && !errors.Is(err, os.ErrExist) {
		t.Fatalf("link the compose plugin: %v", err)
	}
	return w.Docker(t, append([]string{"compose"}, args...)...)
}

// MustCompose runs Compose and fails the test unless it exits 0; it
// returns stdout.
func (w *World) MustCompose(t testing.TB, args ...string) string {
	t.Helper()
	out, errOut, code := w.Compose(t, args...)
	if code != 0 {
		t.Fatalf("docker compose %v: exit %d\n%s%s", args, code, out, errOut)
	}
	return out
}
