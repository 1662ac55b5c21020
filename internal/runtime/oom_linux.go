package runtime

import (
	"encoding/binary"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/container"
)

// OOMWatch tells when the kernel's OOM killer acts in a container's memory
// cgroup (docker inspect's State.OOMKilled, the "oom" event). On cgroup v1
// it is an eventfd registered on memory.oom_control, which the kernel
// signals at each OOM and once more when the cgroup is removed (runc and
// containerd watch it so); on v2 an inotify watch of memory.events. One
// goroutine parked in Go's poller each. Both keep an oom_kill count
// (memory.oom_control's or memory.events'), which Stop reads last: a
// kill before the watch began, or one whose notice the watch had not read
// when the container's init exited, is seen too (runc run --detach leaves
// the cgroup until the runtime releases the container, after Stop).
type OOMWatch struct {
	f       *os.File // the eventfd (v1) or the inotify descriptor (v2)
	dir     string   // the cgroup's directory
	v2      bool
	kills   uint64 // the oom_kill count already told
	pending bool   // a kill counted before the watch began, to tell at once
	onOOM   func()
	done    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	seen    bool
}

// WatchOOM watches the memory cgroup of container id and calls onOOM,
// from its own goroutine (never from WatchOOM itself), at each OOM the
// kernel tells of until Stop. fresh is a run that has just started, in a
// cgroup of its own: any kill counted there is of this run; otherwise
// (a re-adopted container, one given a memory limit by an update) only
// the kills from now on are.
func WatchOOM(id, cgroup string, fresh bool, onOOM func()) (*OOMWatch, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	if !path.IsAbs(cgroup) || path.Base(cgroup) != id {
		return nil, fmt.Errorf("watch OOM kills of container %s: %q is not its cgroup", id, cgroup)
	}
	w := &OOMWatch{onOOM: onOOM, done: make(chan struct{})}
	var err error
	if _, statErr := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); statErr == nil {
		w.v2, w.dir = true, filepath.Join(cgroupRoot, cgroup)
		err = w.openV2()
	} else {
		w.dir = filepath.Join(cgroupRoot, "memory", cgroup)
		err = w.openV1()
	}
	if err != nil {
		return nil, fmt.Errorf("watch OOM kills of container %s in %s: %w", id, w.dir, err)
	}
	if kills, err := w.readKills(); err == nil {
		w.kills = kills
		if fresh && kills > 0 {
			w.pending = true
		}
	}
	go w.run()
	return w, nil
}

func (w *OOMWatch) openV1() error {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return err
	}
	ctl, err := os.Open(filepath.Join(w.dir, "memory.oom_control"))
	if err != nil {
		unix.Close(efd)
		return err
	}
	defer ctl.Close() // the registration holds the eventfd, not this file
	reg := fmt.Sprintf("%d %d", efd, ctl.Fd())
	if err := os.WriteFile(filepath.Join(w.dir, "cgroup.event_control"), []byte(reg), 0o600); err != nil {
		unix.Close(efd)
		return err
	}
	w.f = os.NewFile(uintptr(efd), "oom-eventfd")
	return nil
}

func (w *OOMWatch) openV2() error {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return err
	}
	if _, err := unix.InotifyAddWatch(fd, filepath.Join(w.dir, "memory.events"), unix.IN_MODIFY); err != nil {
		unix.Close(fd)
		return err
	}
	w.f = os.NewFile(uintptr(fd), "oom-inotify")
	return nil
}

// readKills is the cgroup's oom_kill count (v1 kernels before 4.13 have
// none: 0).
func (w *OOMWatch) readKills() (uint64, error) {
	name := "memory.oom_control"
	if w.v2 {
		name = "memory.events"
	}
	b, err := os.ReadFile(filepath.Join(w.dir, name))
	if err != nil {
		return 0, err
	}
	return container.ParseKV(string(b))["oom_kill"], nil
}

// run reads the watch's descriptor until Stop ends it or the cgroup goes.
func (w *OOMWatch) run() {
	defer close(w.done)
	if w.pending {
		w.oom()
	}
	buf := make([]byte, 4096)
	for {
		n, err := w.f.Read(buf)
		if err != nil || !w.notice(buf[:n]) {
			return
		}
	}
}

// notice handles one read; false once the cgroup is gone.
func (w *OOMWatch) notice(b []byte) bool {
	if w.v2 {
		kills, err := w.readKills()
		if err != nil {
			return false
		}
		if kills > w.kills {
			w.kills = kills
			w.oom()
		}
		return true
	}
	// v1: the eventfd's count is how many signals came. The cgroup's
	// removal is one; any other is an OOM (told before the kill, so the
	// count may not have grown yet).
	count := uint64(1)
	if len(b) >= 8 {
		count = binary.NativeEndian.Uint64(b)
	}
	if _, err := os.Lstat(filepath.Join(w.dir, "cgroup.event_control")); err != nil {
		if count > 1 {
			w.oom()
		}
		return false
	}
	w.oom()
	return true
}

func (w *OOMWatch) oom() {
	w.mu.Lock()
	w.seen = true
	w.mu.Unlock()
	if w.onOOM != nil {
		w.onOOM()
	}
}

// Stop ends the watch and reports whether an OOM kill was seen, after a
// last look at what the kernel signalled and at the kill count (onOOM is
// called for what only that look finds). It may be called more than once.
func (w *OOMWatch) Stop() bool {
	w.once.Do(func() {
		w.f.SetReadDeadline(time.Now())
		<-w.done
		defer w.f.Close()
		// Past the deadline Read reads nothing; the goroutine is done,
		// so the descriptor is this one's to read.
		var buf [4096]byte
		n := 0
		if rc, err := w.f.SyscallConn(); err == nil {
			rc.Control(func(fd uintptr) { n, _ = unix.Read(int(fd), buf[:]) })
		}
		if n > 0 {
			w.notice(buf[:n])
		}
		w.mu.Lock()
		seen := w.seen
		w.mu.Unlock()
		if kills, err := w.readKills(); err == nil && kills > w.kills && !seen {
			w.oom()
		}
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen
}
