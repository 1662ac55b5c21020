// Package version holds berth's own version and the Docker Engine API
// versions its server speaks. GitCommit and BuildTime are set at link
// time (the scripts do, see scripts/lib.sh):
//
//	go build -ldflags "-X github.com/berth-net/berth/internal/version.GitCommit=$(git rev-parse --short HEAD)
//	  -X github.com/berth-net/berth/internal/version.BuildTime=$(git log -1 --format=%cI)"
//
// or else taken from what Go stamps into a binary built in a git checkout
// (unless -buildvcs=false).
package version

import "runtime/debug"

// Version is berth's release version.
const Version = "0.1.0-dev"

// APIVersion is the highest Docker Engine API version berth serves; it is
// what /_ping advertises, so clients negotiate down to it.
const APIVersion = "1.51"

// MinAPIVersion is the lowest API version berth accepts, as moby does.
const MinAPIVersion = "1.24"

// GitCommit is the commit berth was built from; "unknown" unless set with -ldflags -X.
var GitCommit = "unknown"

// BuildTime is when that commit was made (RFC 3339); "" unless set with
// -ldflags -X.
var BuildTime = ""

// Commit is GitCommit, or the commit Go stamped into the binary, or
// "unknown".
func Commit() string {
	if GitCommit != "unknown" && GitCommit != "" {
		return GitCommit
	}
	if rev := buildSetting("vcs.revision"); len(rev) >= 7 {
		if buildSetting("vcs.modified") == "true" {
			return rev[:7] + "-dirty"
		}
		return rev[:7]
	}
	return "unknown"
}

// Built is BuildTime, or the commit time Go stamped into the binary, or "".
func Built() string {
	if BuildTime != "" {
		return BuildTime
	}
	return buildSetting("vcs.time")
}

func buildSetting(key string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, s := range bi.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}
