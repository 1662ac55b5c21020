package daemon

import (
	"time"

	"github.com/berth-net/berth/internal/runtime"
)

// logRotateEvery is how often the rotator looks at the raw logs of the
// containers an older berth (or an older reaper) started, which write
// their files themselves (runtime.RotateLogs): such a log can pass
// max-size by what the container writes in this time. Every other log is
// rotated by its writer at the entry that finds it full (the runtime's
// jsonlog.go), as Docker's json-file does, and is not looked at here.
const logRotateEvery = 250 * time.Millisecond

// startLogRotator rotates full logs until the returned func is called
// (Close), which waits for a rotation under way.
func (d *Daemon) startLogRotator() (stop func()) {
	warned := map[string]time.Time{} // a failing rotation is logged once a minute
	return every(logRotateEvery, func() { d.rotateFullLogs(warned) })
}

// rotateFullLogs rotates the logs that reached their container's
// max-size, of running and stopped containers alike (a container may have
// written past it just before it stopped). It takes a container's lock
// only to read its options (a container busy with a life-cycle operation
// is looked at on the next tick); the runtime keeps a rotation and a
// removal of the same files apart.
func (d *Daemon) rotateFullLogs(warned map[string]time.Time) {
	for _, cs := range d.states() {
		if !cs.mu.TryLock() {
			continue
		}
		id, lc, gone := cs.c.ID, cs.c.Config.LogConfig, cs.goneLocked()
		cs.mu.Unlock()
		size, files, err := lc.Limits()
		if gone || err != nil || size == 0 {
			continue
		}
		err = d.runtime.RotateLogs(id, runtime.LogLimit{MaxSize: size, MaxFiles: files})
		if err != nil && time.Since(warned[id]) > time.Minute {
			warned[id] = time.Now()
			d.log.Warn("rotating a container's logs", "id", id[:12], "err", err)
		}
	}
}
