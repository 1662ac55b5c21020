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
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(logRotateEvery)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				d.rotateFullLogs()
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}

// rotateFullLogs rotates the logs that reached their container's
// max-size, of running and stopped containers alike (a container may have
// written past it just before it stopped). It holds the container's lock
// while it rotates, so that a removal never deletes the directory under a
// rotation; a container busy with a life-cycle operation is looked at on
// the next tick.
func (d *Daemon) rotateFullLogs() {
	for _, cs := range d.states() {
		if !cs.mu.TryLock() {
			continue
		}
		size, files, err := cs.c.Config.LogConfig.Limits()
		if !cs.goneLocked() && err == nil && size > 0 {
			if err := d.runtime.RotateLogs(cs.c.ID, runtime.LogLimit{MaxSize: size, MaxFiles: files}); err != nil {
				d.log.Warn("rotating a container's logs", "id", cs.c.ShortID(), "err", err)
			}
		}
		cs.mu.Unlock()
	}
}
