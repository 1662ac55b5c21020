package daemon

import (
	"context"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"github.com/berth-net/berth/internal/api"
	"github.com/berth-net/berth/internal/container"
	berthruntime "github.com/berth-net/berth/internal/runtime"
	"github.com/berth-net/berth/internal/runtime/image"
	"golang.org/x/sys/unix"
)

// ImportImage imports a root filesystem tarball.
func (d *Daemon) ImportImage(ctx context.Context, r io.Reader, repo, tag, message string) (*image.Image, error) {
	return d.images.Import(ctx, r, repo, tag, message)
}

// Images lists the images.
func (d *Daemon) Images(ctx context.Context) ([]*image.Image, error) { return d.images.List() }

// Image finds one image.
func (d *Daemon) Image(ctx context.Context, ref string) (*image.Image, error) {
	return d.images.Get(ref)
}

// RemoveImage untags or deletes an image that no container uses (unless forced).
func (d *Daemon) RemoveImage(ctx context.Context, ref string, force bool) ([]string, []string, error) {
	d.imagesMu.Lock()
	defer d.imagesMu.Unlock()
	return d.images.Remove(ref, force, d.imageInUse)
}

// imageInUse says whether a container, running or not, uses image id.
func (d *Daemon) imageInUse(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, cs := range d.containers {
		if cs.c.Config.ImageID == id {
			return true
		}
	}
	return false
}

// PruneImages is docker image prune [-a]: see image.Store.Prune. It
// holds off container creation (imagesMu), which could otherwise pick
// an image that the prune is about to remove.
func (d *Daemon) PruneImages(ctx context.Context, all bool, match func(*image.Image) bool) ([]string, []string, int64, error) {
	d.imagesMu.Lock()
	defer d.imagesMu.Unlock()
	return d.images.Prune(all, match, d.imageInUse, func(id string, err error) {
		d.log.Warn("image prune: image left", "id", id, "err", err)
	})
}

// SystemInfo describes the daemon for /info and /version.
func (d *Daemon) SystemInfo(ctx context.Context) (api.SystemInfo, error) {
	info := api.SystemInfo{
		Name: d.hostname, DataRoot: d.cfg.DataRoot, ExecRoot: d.cfg.ExecRoot,
		OperatingSystem: osName(), Architecture: runtime.GOARCH, NCPU: runtime.NumCPU(),
		DefaultBridgeName: d.cfg.BridgeName, RuncVersion: d.runcVersion(),
	}
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		info.KernelVersion = unix.ByteSliceToString(uts.Release[:])
	}
	info.MemTotal = int64(berthruntime.HostMemory())
	if b, err := os.ReadFile("/etc/machine-id"); err == nil {
		info.ID = strings.TrimSpace(string(b))
	}
	cs, _ := d.Containers(ctx)
	for _, c := range cs {
		info.Containers++
		switch c.Status() {
		case container.StatusRunning:
			info.Running++
		case container.StatusPaused:
			info.Paused++
		default:
			info.Stopped++
		}
	}
	if imgs, err := d.images.List(); err == nil {
		info.Images = len(imgs)
	}
	return info, nil
}

func osName() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "Linux"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "Linux"
}

// runcVersion is the first line of `runc --version` ("runc version 1.1.5"),
// read once: docker info shows it.
func (d *Daemon) runcVersion() string {
	d.runcOnce.Do(func() {
		out, err := exec.Command("runc", "--version").Output()
		if err != nil {
			return
		}
		line, _, _ := strings.Cut(string(out), "\n")
		d.runcVer = strings.TrimSpace(strings.TrimPrefix(line, "runc version"))
	})
	return d.runcVer
}
