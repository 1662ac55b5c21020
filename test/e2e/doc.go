// Package e2e holds berth's end-to-end tests: the built binary, its daemon
// running in a private test world (internal/testworld), real containers
// under runc and real traffic, driven through berth's CLI and the docker
// CLI. Every test needs root and makes its own world; none touches the
// machine's own network.
package e2e
