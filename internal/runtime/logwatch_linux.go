package runtime

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// logWatch wakes a log's follower when anything changes in the log's
// directory (inotify): an entry written, a rotation, a new file. moby's
// json-file follower waits on fsnotify the same way. The follower still
// looks every followFallback, for a file system whose changes inotify
// does not see (a network one).
type logWatch struct {
	f       *os.File
	changed chan struct{}
}

// watchLogDir watches dir, or returns nil when it cannot; missing says
// the directory is not there yet (the follower polls until it is, and
// tries again), any other failure (inotify's limits reached) that the
// follower polls for good.
func watchLogDir(dir string) (w *logWatch, missing bool) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, false
	}
	const mask = unix.IN_MODIFY | unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM |
		unix.IN_DELETE | unix.IN_CLOSE_WRITE | unix.IN_ATTRIB | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF
	if _, err := unix.InotifyAddWatch(fd, dir, mask); err != nil {
		unix.Close(fd)
		return nil, errors.Is(err, unix.ENOENT)
	}
	// A non-blocking descriptor: the file goes through Go's poller, and
	// Close wakes the Read below.
	w = &logWatch{f: os.NewFile(uintptr(fd), "inotify"), changed: make(chan struct{}, 1)}
	go w.run()
	return w, false
}

// run turns the events into one pending wake-up: the follower reads all
// that is new whatever woke it.
func (w *logWatch) run() {
	buf := make([]byte, 4096) // more than one event with the longest name
	for {
		if _, err := w.f.Read(buf); err != nil {
			return // closed
		}
		select {
		case w.changed <- struct{}{}:
		default:
		}
	}
}

// C is the wake-up channel; nil (never ready) without a watch.
func (w *logWatch) C() <-chan struct{} {
	if w == nil {
		return nil
	}
	return w.changed
}

func (w *logWatch) close() {
	if w != nil {
		w.f.Close()
	}
}
