package cni

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"syscall"

	"github.com/berth-net/berth/internal/driver/bridge"
)

// reapEnv, set to 1 without CNI_COMMAND, makes berth-cni the process that
// deletes the pairs earlier calls cut off and marked.
const reapEnv = "BERTH_CNI_REAP"

// spawnReaper starts berth-cni again, detached (a session of its own, no
// stdio: the runtime reading the call's stdout sees its end at once), to
// delete the marked pairs. If it cannot start, the delete runs here.
func spawnReaper(log *slog.Logger) {
	self, err := os.Executable()
	if err == nil {
		cmd := exec.Command(self)
		cmd.Env = []string{reapEnv + "=1"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err = cmd.Start(); err == nil {
			cmd.Process.Release()
			return
		}
	}
	log.Warn("could not start a process to delete the veths cut off; deleting them now", "err", err)
	if err := bridge.DeleteGroup("", bridge.CNIGroups.Reap); err != nil {
		log.Warn("delete veths cut off", "err", err)
	}
}

// reapMarked is that process: one delete of the whole group.
func reapMarked(stderr io.Writer) int {
	if err := bridge.DeleteGroup("", bridge.CNIGroups.Reap); err != nil {
		fmt.Fprintln(stderr, "berth-cni: delete veths cut off:", err)
		return 1
	}
	return 0
}
