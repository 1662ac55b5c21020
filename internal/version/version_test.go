package version

import (
	"strconv"
	"strings"
	"testing"
)

func minor(t *testing.T, v string) int {
	t.Helper()
	major, m, ok := strings.Cut(v, ".")
	n, err := strconv.Atoi(m)
	if !ok || major != "1" || err != nil {
		t.Fatalf("API version %q is not 1.N", v)
	}
	return n
}

// TestAPIVersions: the docker CLI 28.3+ negotiates 1.51; the legacy
// NetworkSettings fields the CLI 28 reads exist only below 1.52.
func TestAPIVersions(t *testing.T) {
	if lo, hi := minor(t, MinAPIVersion), minor(t, APIVersion); lo > hi || hi < 44 || hi >= 52 {
		t.Errorf("API versions %s..%s: want a minimum below the maximum, and 1.44 <= maximum < 1.52", MinAPIVersion, APIVersion)
	}
	if GitCommit == "" {
		t.Error("GitCommit is empty; it should say unknown unless set at link time")
	}
}

// TestCommitAndBuilt: what -ldflags -X set wins; without it the commit
// and its time come from what Go stamped (nothing in a test binary), and
// else "unknown" and "".
func TestCommitAndBuilt(t *testing.T) {
	oldCommit, oldBuilt := GitCommit, BuildTime
	t.Cleanup(func() { GitCommit, BuildTime = oldCommit, oldBuilt })
	GitCommit, BuildTime = "abc1234", "2026-12-02T04:00:00Z"
	if Commit() != "abc1234" || Built() != "2026-12-02T04:00:00Z" {
		t.Errorf("with ldflags: Commit() = %q, Built() = %q", Commit(), Built())
	}
	GitCommit, BuildTime = "unknown", ""
	if want := buildSetting("vcs.revision"); want == "" && (Commit() != "unknown" || Built() != "") {
		t.Errorf("without ldflags or stamps: Commit() = %q, Built() = %q; want unknown and empty", Commit(), Built())
	}
}
