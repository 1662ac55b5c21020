// Command berth-cni is berth as a CNI plugin: put it in a runtime's CNI
// plugin directory (CNI_PATH, often /opt/cni/bin) and name it as "type" in
// a network configuration that reads like the bridge plugin's (see
// internal/cni and the README's "CNI" section).
package main

import (
	"os"
	"runtime"

	"github.com/berth-net/berth/internal/cni"
)

// init keeps the main goroutine on the first thread: the driver enters
// namespaces on threads of its own and throws away any that cannot go
// back, which the runtime cannot do with the first.
func init() { runtime.LockOSThread() }

func main() {
	os.Exit(cni.Main(os.Args, os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}
