// Package nstest gives kernel tests what they need to run safely: a fresh
// network namespace per test, bound to a file in the test's temp dir and
// deleted when the test ends, and a root check that fails under CI=true
// instead of skipping (kernel tests must run in CI).
package nstest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/sandbox"
)

// RequireRoot skips a test that needs root when not root, except under
// CI=true, where a skipped kernel test is a failure.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	Unavailable(t, "kernel test needs root")
}

// Unavailable ends a kernel test that cannot run here (for why): a skip,
// except under CI=true, where a skipped kernel test is a failure.
func Unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s, and CI=true forbids skipping the test", why)
	}
	t.Skip(why)
}

// New returns the path of a new, empty network namespace (only lo, up)
// that is unmounted and removed when the test ends, even if it fails.
func New(t testing.TB) string {
	t.Helper()
	RequireRoot(t)
	p := filepath.Join(t.TempDir(), "netns")
	if err := sandbox.NewBound(p); err != nil {
		t.Fatalf("create test netns: %v", err)
	}
	t.Cleanup(func() {
		if err := sandbox.Unbind(p); err != nil {
			t.Errorf("remove test netns: %v", err)
		}
	})
	return p
}

// ConntrackCount is the number of connection tracking entries in the
// network namespace at path.
func ConntrackCount(t testing.TB, path string) int {
	t.Helper()
	var n int
	err := sandbox.Do(path, func() error {
		b, err := os.ReadFile("/proc/sys/net/netfilter/nf_conntrack_count")
		if err != nil {
			return err
		}
		n, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err
	})
	if err != nil {
		t.Fatalf("conntrack entries in %s: %v", path, err)
	}
	return n
}
