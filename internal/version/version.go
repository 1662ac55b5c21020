// Package version holds berth's own version and the Docker Engine API
// versions its server speaks. GitCommit is set at link time:
//
//	go build -ldflags "-X github.com/berth-net/berth/internal/version.GitCommit=$(git rev-parse --short HEAD)"
package version

// Version is berth's release version.
const Version = "0.1.0-dev"

// APIVersion is the highest Docker Engine API version berth serves; it is
// what /_ping advertises, so clients negotiate down to it.
const APIVersion = "1.51"

// MinAPIVersion is the lowest API version berth accepts, as moby does.
const MinAPIVersion = "1.24"

// GitCommit is the commit berth was built from; "unknown" unless set with -ldflags -X.
var GitCommit = "unknown"
