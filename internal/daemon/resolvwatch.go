package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/dns"
)

// The host's resolver configuration changes under a running daemon: a
// DHCP lease, a VPN coming up, NetworkManager or systemd-resolved
// rewriting their file. Docker reads it when it sets up a container and
// never again, so a running container's resolver goes on forwarding to
// servers the host left behind (moby#25452). berth follows the file: a
// change makes every running resolver that forwards to the host's
// servers (not a container's own --dns) forward to the new ones. The
// container's resolv.conf names 127.0.0.11 and does not change.

// resolvSettle is how long a burst of changes to the file (a write, a
// rename over it, a second write) is let settle before the servers are
// read again.
const resolvSettle = 100 * time.Millisecond

// watchResolvConf follows the host's resolver files with inotify until
// ctx ends: the directory of each (a file is often replaced by a rename,
// which a watch on the file itself would lose), and, when the file is a
// symbolic link (/etc/resolv.conf to systemd's stub file), its target's
// too. The returned wait returns once its goroutines have ended (after
// ctx), so that no refresh runs while the daemon closes.
func (d *Daemon) watchResolvConf(ctx context.Context) (wait func(), err error) {
	var paths []string
	for _, h := range []*hostResolv{d.resolv, d.resolvSystemd} {
		if h == nil {
			continue
		}
		paths = append(paths, h.path)
		if target, err := filepath.EvalSymlinks(h.path); err == nil && target != h.path {
			paths = append(paths, target)
		}
	}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("watch the host's resolv.conf: %w", err)
	}
	// Non-blocking, so Go's poller serves it and Close ends a pending Read.
	f := os.NewFile(uintptr(fd), "inotify")
	names := map[int32][]string{} // watch descriptor → the base names that matter in its directory
	const mask = unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO | unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM
	for _, p := range paths {
		wd, err := unix.InotifyAddWatch(fd, filepath.Dir(p), mask)
		if err != nil {
			// A directory that does not exist (no systemd-resolved) has nothing to follow.
			d.log.Debug("not watching a resolver file's directory", "path", p, "err", err)
			continue
		}
		names[int32(wd)] = append(names[int32(wd)], filepath.Base(p))
	}
	if len(names) == 0 {
		f.Close()
		return func() {}, nil
	}
	changed := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		f.Close()
	}()
	go func() {
		defer wg.Done()
		d.readResolvEvents(f, names, changed)
	}()
	go func() {
		defer wg.Done()
		d.followResolvChanges(ctx, changed)
	}()
	return wg.Wait, nil
}

// readResolvEvents turns inotify events about the files in names into
// a signal on changed, until f is closed.
func (d *Daemon) readResolvEvents(f *os.File, names map[int32][]string, changed chan<- struct{}) {
	defer close(changed)
	buf := make([]byte, 16<<10)
	for {
		n, err := f.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				d.log.Warn("resolv.conf watcher stopped; running containers keep their DNS servers", "err", err)
			}
			return
		}
		if resolvEventsMatch(buf[:n], names) {
			select {
			case changed <- struct{}{}:
			default:
			}
		}
	}
}

// resolvEventsMatch reports whether any inotify event in b is about a
// file of names (by watch descriptor).
func resolvEventsMatch(b []byte, names map[int32][]string) bool {
	hit := false
	for len(b) >= unix.SizeofInotifyEvent {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&b[0]))
		end := unix.SizeofInotifyEvent + int(ev.Len)
		if end > len(b) {
			break
		}
		name := string(b[unix.SizeofInotifyEvent:end])
		for len(name) > 0 && name[len(name)-1] == 0 {
			name = name[:len(name)-1]
		}
		if slices.Contains(names[ev.Wd], name) || ev.Mask&unix.IN_Q_OVERFLOW != 0 {
			hit = true
		}
		b = b[end:]
	}
	return hit
}

// followResolvChanges gives the running resolvers the host's servers
// again after each settled change.
func (d *Daemon) followResolvChanges(ctx context.Context, changed <-chan struct{}) {
	for range changed {
		select {
		case <-ctx.Done():
			return
		case <-time.After(resolvSettle):
		}
		select { // what came meanwhile is covered by this refresh
		case <-changed:
		default:
		}
		d.refreshUpstreams()
	}
}

// refreshUpstreams gives every running resolver that forwards to the
// host's servers the ones the host's file names now, and every running
// container without servers of its own (--dns) the resolv.conf a new one
// would get, unless the file was edited in the container: on a user
// network its search domains and options (the resolver is its server),
// on the default bridge, none or the host network the host's servers too.
// A file that names none (deleted, or caught half written) changes
// nothing: the servers a container has are better than the public
// fallback until the next change.
func (d *Daemon) refreshUpstreams() {
	if d.closing.Load() {
		return
	}
	if len(d.resolv.get().nameservers) == 0 {
		d.log.Info("the host's resolv.conf names no server now; containers keep theirs")
		return
	}
	resolvers, files := 0, 0
	for _, cs := range d.states() {
		cs.mu.Lock()
		c := cs.c
		if !c.Running() || d.dnsServersSet(c) {
			cs.mu.Unlock()
			continue
		}
		if sbID := c.State.SandboxID; d.dnsRunning(sbID) {
			_, upstreams, ndotsSet := d.resolverConf(c)
			if err := d.dns.Start(dns.Sandbox{ID: sbID, Path: c.State.SandboxKey, Upstreams: upstreams, NdotsSet: ndotsSet}); err != nil {
				d.log.Warn("update a resolver's DNS servers", "name", c.Name, "err", err)
			} else {
				resolvers++
			}
		}
		switch wrote, err := d.followHostResolvConf(c); {
		case err != nil:
			d.log.Warn("rewrite resolv.conf after the host's changed", "name", c.Name, "err", err)
		case wrote:
			files++
		}
		cs.mu.Unlock()
	}
	if resolvers+files > 0 {
		d.log.Info("the host's resolv.conf changed: running containers follow it", "resolvers", resolvers, "resolv.conf files", files)
	}
}
