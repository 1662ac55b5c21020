// Command berth is both the daemon (`berth daemon`) and its CLI, whose
// verbs, flags and output are docker's.
package main

import (
	"os"

	"github.com/berth-net/berth/internal/cli"
	"github.com/berth-net/berth/internal/daemon"
)

func main() {
	os.Exit(cli.Execute(cli.NewRootCommand(daemon.NewCommand())))
}
