package runtime

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/container"
)

// OOMWatch tells when the kernel's OOM killer acts in a container's memory
// cgroup (docker inspect's State.OOMKilled, the "oom" event). On cgroup v1
// it is an eventfd registered on memory.oom_control, which the kernel
// signals at each OOM and once more when the cgroup is removed (runc and
// containerd watch it so); on v2 an inotify watch of memory.events, whose
// oom_kill count it compares. One goroutine parked in Go's poller each.
type OOMWatch struct {
	f     *os.File // the eventfd (v1) or the inotify descriptor (v2)
	dir   string   // the cgroup's directory
	v2    bool
	kills uint64 // v2: memory.events' oom_kill when the watch began
	onOOM func()
	done  chan struct{}
	once  sync.Once
	mu    sync.Mutex
	seen  bool
}

// WatchOOM watches the memory cgroup of process pid (a container's init)
// and calls onOOM, from its own goroutine, at each OOM kill there until
// Stop.
func WatchOOM(pid int, onOOM func()) (*OOMWatch, error) {
	cg, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return nil, fmt.Errorf("watch OOM of process %d: %w", pid, err)
	}
	v2, v1 := container.ParseProcCgroup(string(cg))
	w := &OOMWatch{onOOM: onOOM, done: make(chan struct{})}
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err == nil && v2 != "" {
		w.v2, w.dir = true, filepath.Join(cgroupRoot, v2)
		err = w.openV2()
	} else if p, ok := v1["memory"]; ok {
		w.dir = filepath.Join(cgroupRoot, "memory", p)
		err = w.openV1()
	} else {
		return nil, fmt.Errorf("watch OOM of process %d: no memory cgroup", pid)
	}
	if err != nil {
		return nil, fmt.Errorf("watch OOM of process %d in %s: %w", pid, w.dir, err)
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
	w.kills, _ = w.killsV2()
	return nil
}

// killsV2 is memory.events' oom_kill.
func (w *OOMWatch) killsV2() (uint64, error) {
	b, err := os.ReadFile(filepath.Join(w.dir, "memory.events"))
	if err != nil {
		return 0, err
	}
	return container.ParseKV(string(b))["oom_kill"], nil
}

// run reads the watch's descriptor until Stop ends it or the cgroup goes.
func (w *OOMWatch) run() {
	defer close(w.done)
	buf := make([]byte, 4096)
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				w.last(buf)
			}
			return
		}
		if !w.notice(buf[:n]) {
			return
		}
	}
}

// last is run's final look once Stop set the deadline: what the kernel
// signalled and run had not read yet.
func (w *OOMWatch) last(buf []byte) {
	rc, err := w.f.SyscallConn()
	if err != nil {
		return
	}
	var n int
	rc.Read(func(fd uintptr) bool {
		n, _ = unix.Read(int(fd), buf)
		return true
	})
	if n > 0 {
		w.notice(buf[:n])
	}
}

// notice handles one read; false once the cgroup is gone.
func (w *OOMWatch) notice(b []byte) bool {
	if w.v2 {
		kills, err := w.killsV2()
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
	// removal is one; any other is an OOM.
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

// Stop ends the watch, after a last look at what the kernel signalled,
// and reports whether an OOM kill was seen. It may be called more than
// once.
func (w *OOMWatch) Stop() bool {
	w.once.Do(func() {
		w.f.SetReadDeadline(time.Now())
		<-w.done
		w.f.Close()
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen
}
