package daemon

import (
	"time"

	"github.com/berth-net/berth/internal/runtime"
)

// logRotateEvery is how often the rotator looks at the logs of the
// containers with a max-size. A container writes its logs itself, with no
// copier in the daemon to count the bytes (runtime.RotateLogs), so a log
// can pass max-size by what the container writes in this time; Docker's
// json-file, which copies every line, rotates at the line that crosses it.
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
