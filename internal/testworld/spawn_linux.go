package testworld

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// The kernel sends a child's parent-death signal when the *thread* that
// forked it exits, not the process. Go ends threads whose goroutine exits
// while locked (sandbox.Do does that when its thread cannot go back to its
// namespace), so a holder or daemon forked from an ordinary goroutine
// could be killed at a random moment. Long-lived
// children are therefore forked from one goroutine locked to its thread for
// the life of the test process: they die with the test binary (a timeout
// panic, a SIGKILL) instead of leaking, and never before.
var (
	spawnOnce sync.Once
	spawnReqs chan spawnReq
)

type spawnReq struct {
	cmd  *exec.Cmd
	errc chan error
}

// startTied starts cmd so that it is SIGKILLed if the test process dies.
func startTied(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnReqs = make(chan spawnReq)
		go spawnLoop()
	})
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	req := spawnReq{cmd: cmd, errc: make(chan error, 1)}
	spawnReqs <- req
	return <-req.errc
}

func spawnLoop() {
	runtime.LockOSThread() // never unlocked: this thread must outlive every child
	for req := range spawnReqs {
		req.errc <- req.cmd.Start()
	}
}
