// Command berth is both the daemon (`berth daemon`) and its CLI, whose
// verbs, flags and output are docker's.
package main

import (
	"os"
	"runtime"

	"github.com/berth-net/berth/internal/cli"
	"github.com/berth-net/berth/internal/daemon"
)

// init pins the main goroutine to the process's first thread, so no other
// goroutine ever runs there. The daemon enters container namespaces on
// locked threads, which it discards when they cannot go back; were one of
// them the first thread, the runtime could not discard it and would park
// it for good inside that container's namespace, and /proc/<pid>/ns/net
// (what `nsenter -t <pid>` and `ip netns identify <pid>` read) would name
// the container's namespace instead of the host's.
func init() { runtime.LockOSThread() }

func main() {
	os.Exit(cli.Execute(cli.NewRootCommand(daemon.NewCommand())))
}
