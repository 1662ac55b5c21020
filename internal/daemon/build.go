package daemon

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/berth-net/berth/internal/api"
	"github.com/berth-net/berth/internal/build"
	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/reference"
	"github.com/berth-net/berth/internal/runtime"
	"github.com/berth-net/berth/internal/runtime/image"
)

// BuildImage is docker build with the legacy builder (moby's
// BuildManager, what the docker CLI uses without buildx): the context
// tar in body unpacked into a directory of its own, the Dockerfile run
// (internal/build) with this daemon's images and containers, and the
// image tagged ("Successfully built", "Successfully tagged …").
func (d *Daemon) BuildImage(ctx context.Context, body io.Reader, opts api.BuildOptions, out build.Output) (string, error) {
	var tags [][2]string
	for _, t := range opts.Tags {
		if t == "" {
			continue
		}
		named, err := reference.Parse(t)
		if err != nil {
			return "", err
		}
		if strings.Contains(named, "@") {
			return "", errdefs.Invalid("build tag cannot contain a digest")
		}
		repo, tag := splitTag(named)
		if !slices.Contains(tags, [2]string{repo, tag}) {
			tags = append(tags, [2]string{repo, tag})
		}
	}
	tmp, err := os.MkdirTemp(d.buildDir(), "context-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "context")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", err
	}
	if err := image.ExtractArchive(ctx, body, dir, false); err != nil {
		return "", errdefs.Invalid("read the build context: %v", err)
	}
	// To its end: the server sees the client go (its context ends) only
	// once the body is read, and a quiet build writes nothing before it
	// ends.
	if _, err := io.Copy(io.Discard, body); err != nil {
		return "", err
	}
	be := &buildBackend{d: d, run: opts.Container, tmp: tmp}
	defer be.releaseAll()
	if len(opts.CacheFrom) > 0 {
		if be.cacheFrom, err = d.ancestors(opts.CacheFrom); err != nil {
			return "", err
		}
	}
	id, err := build.Build(ctx, be, dir, opts.Options, out)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(out.Stdout, "Successfully built %s\n", image.ShortID(id))
	for _, t := range tags {
		if err := d.TagImage(ctx, id, t[0], t[1]); err != nil {
			return "", err
		}
		fmt.Fprintf(out.Stdout, "Successfully tagged %s\n", t[0]+":"+t[1])
	}
	return id, nil
}

// splitTag splits "name:tag" (the tag after the last "/").
func splitTag(named string) (string, string) {
	slash := strings.LastIndex(named, "/")
	if i := strings.LastIndex(named, ":"); i > slash {
		return named[:i], named[i+1:]
	}
	return named, "latest"
}

// buildDir is where builds unpack their contexts, under the data root
// (the image store's file system, as big as images are).
func (d *Daemon) buildDir() string {
	dir := filepath.Join(d.cfg.DataRoot, "build")
	os.MkdirAll(dir, 0o700)
	return dir
}

// buildBackend is build.Backend over the daemon.
type buildBackend struct {
	d *Daemon
	// run is what a RUN's container is made from (the request's network,
	// extra hosts, resources): its image, command and environment are
	// each step's.
	run container.Config
	tmp string
	// held are the images this build holds from removal.
	held []string
	// cacheFrom, with --cache-from, are the images a cache hit must be
	// one of: those named and their ancestors (moby's image cache with
	// sources).
	cacheFrom map[string]bool
}

// ancestors are the images refs name and all their parents.
func (d *Daemon) ancestors(refs []string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, ref := range refs {
		img, err := d.images.Get(ref)
		if errdefs.Is(err, errdefs.KindNotFound) {
			continue // moby goes on without a source it cannot find
		}
		if err != nil {
			return nil, err
		}
		for id := img.ID; id != "" && !out[id]; {
			out[id] = true
			parent, err := d.images.Get(id)
			if err != nil {
				break
			}
			id = parent.Parent
		}
	}
	return out, nil
}

// hold keeps img from rmi and prune until the build ends: the step
// after it goes on from it (a build's images are untagged, and a prune
// meanwhile would take them).
func (b *buildBackend) hold(img *image.Image) {
	b.d.buildMu.Lock()
	defer b.d.buildMu.Unlock()
	if b.d.building == nil {
		b.d.building = map[string]int{}
	}
	b.d.building[img.ID]++
	b.held = append(b.held, img.ID)
}

func (b *buildBackend) releaseAll() {
	b.d.buildMu.Lock()
	defer b.d.buildMu.Unlock()
	for _, id := range b.held {
		if b.d.building[id]--; b.d.building[id] <= 0 {
			delete(b.d.building, id)
		}
	}
	b.held = nil
}

// image finds ref, held for the build (under the images' lock, so that
// no removal takes it between the lookup and the hold).
func (b *buildBackend) image(ref string) (*image.Image, error) {
	b.d.imagesMu.RLock()
	defer b.d.imagesMu.RUnlock()
	img, err := b.d.images.Get(ref)
	if err == nil {
		b.hold(img)
	}
	return img, err
}

func (b *buildBackend) Image(ctx context.Context, ref string) (*build.Image, error) {
	img, err := b.image(ref)
	if err != nil {
		return nil, err
	}
	return &build.Image{ID: img.ID, Config: img.Config.Clone(), Root: img.RootfsDir}, nil
}

func (b *buildBackend) Cached(ctx context.Context, key string) (*build.Image, error) {
	var ok func(*image.Image) bool
	if b.cacheFrom != nil {
		ok = func(img *image.Image) bool { return b.cacheFrom[img.ID] }
	}
	img, err := b.d.images.Built(key, ok)
	if err != nil || img == nil {
		return nil, err
	}
	held, err := b.made(img)
	if errdefs.Is(err, errdefs.KindNotFound) {
		return nil, nil // removed meanwhile: a miss
	}
	return held, err
}

// made holds an image the build found or made, once it is sure the image
// is still there (an image prune could have come between).
func (b *buildBackend) made(img *image.Image) (*build.Image, error) {
	held, err := b.image(img.ID)
	if err != nil {
		return nil, errdefs.NotFound("image %s was removed during the build: %v", image.ShortID(img.ID), err)
	}
	return &build.Image{ID: held.ID, Config: held.Config.Clone(), Root: held.RootfsDir}, nil
}

func (b *buildBackend) spec(s build.Step) (image.CommitSpec, error) {
	// Held as the store records it (under the store's lock, which a prune
	// takes too): a step's image is untagged and childless until the next
	// step, which a prune meanwhile would take.
	spec := image.CommitSpec{Config: s.Config.Clone(), CreatedBy: s.CreatedBy, Author: s.Author, BuildKey: s.Key, Adopted: b.hold}
	if s.Parent != "" {
		parent, err := b.image(s.Parent)
		if err != nil {
			return spec, err
		}
		spec.Parent = parent
	}
	return spec, nil
}

func (b *buildBackend) Derive(ctx context.Context, s build.Step) (*build.Image, error) {
	spec, err := b.spec(s)
	if err != nil {
		return nil, err
	}
	if spec.Parent == nil {
		// FROM scratch: an empty tree of its own.
		return b.Copy(ctx, s, func(string) error { return nil })
	}
	img, err := b.d.images.Derive(spec)
	if err != nil {
		return nil, err
	}
	return b.made(img)
}

func (b *buildBackend) Copy(ctx context.Context, s build.Step, fill func(upper string) error) (*build.Image, error) {
	spec, err := b.spec(s)
	if err != nil {
		return nil, err
	}
	upper, err := os.MkdirTemp(b.tmp, "upper-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(upper)
	if err := fill(upper); err != nil {
		return nil, err
	}
	lower := ""
	if spec.Parent != nil {
		lower = spec.Parent.RootfsDir
	}
	img, err := b.d.images.Commit(spec, func(rootfs string) (image.Tree, error) {
		t, err := runtime.CommitUpper(ctx, upper, lower, rootfs)
		return image.Tree{DiffID: t.DiffID, DiffSize: t.DiffSize, Size: t.Size}, err
	})
	if err != nil {
		return nil, err
	}
	return b.made(img)
}

// Run is a RUN step, as moby's containerManager.Run: a container of the
// step's parent created (" ---> Running in <id>"), its output followed
// from its start, started, waited for, committed, and removed when the
// build says so.
func (b *buildBackend) Run(ctx context.Context, s build.Step, r build.RunSpec, out build.Output) (*build.Image, error) {
	if s.Parent == "" {
		return nil, errdefs.Invalid("cannot run a command in an empty image (FROM scratch): it has no files")
	}
	spec, err := b.spec(s)
	if err != nil {
		return nil, err
	}
	cfg := b.run
	cfg.Image, cfg.Cmd, cfg.Entrypoint = s.Parent, r.Cmd, []string{""}
	cfg.Env, cfg.User, cfg.WorkingDir = r.Env, r.User, r.WorkingDir
	cfg.Healthcheck = &container.HealthConfig{Test: []string{"NONE"}}
	cfg.Labels = nil
	c, warnings, err := b.d.CreateContainer(ctx, "", cfg)
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		fmt.Fprintf(out.Stdout, " ---> [Warning] %s\n", w)
	}
	fmt.Fprintf(out.Stdout, " ---> Running in %s\n", c.ShortID())
	remove := func() {
		if err := b.d.RemoveContainer(context.WithoutCancel(ctx), c.ID, true, true); err != nil && !errdefs.Is(err, errdefs.KindNotFound) {
			fmt.Fprintf(out.Stdout, "Removing intermediate container %s: %v\n", c.ShortID(), err)
			return
		}
		fmt.Fprintf(out.Stdout, " ---> Removed intermediate container %s\n", c.ShortID())
	}
	code, err := b.runContainer(ctx, c.ID, out)
	if err == nil && code != 0 {
		err = &build.ExitError{Code: code}
	}
	if err != nil {
		if r.ForceRemove || ctx.Err() != nil {
			remove()
		}
		return nil, err
	}
	img, err := b.d.images.Commit(spec, func(rootfs string) (image.Tree, error) {
		t, err := b.d.runtime.CommitTree(ctx, c.ID, spec.Parent.RootfsDir, rootfs)
		return image.Tree{DiffID: t.DiffID, DiffSize: t.DiffSize, Size: t.Size}, err
	})
	if r.Remove || r.ForceRemove {
		remove()
	}
	if err != nil {
		return nil, err
	}
	return b.made(img)
}

// runContainer starts container id with its output followed into out and
// returns its exit code once it exited and its output is all written.
func (b *buildBackend) runContainer(ctx context.Context, id string, out build.Output) (int, error) {
	attach, err := b.d.AttachContainer(ctx, id)
	if err != nil {
		return 0, err
	}
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	attached := make(chan error, 1)
	go func() { attached <- attach(actx, api.Streams{Stdout: out.Stdout, Stderr: out.Stderr}) }()
	wait, err := b.d.WaitContainer(ctx, id, "next-exit")
	if err != nil {
		return 0, err
	}
	if err := b.d.StartContainer(ctx, id); err != nil {
		return 0, err
	}
	select {
	case res := <-wait:
		<-attached // the attach ends with the run: everything it printed is out
		return res.StatusCode, nil
	case <-ctx.Done():
		cancel()
		<-attached // nothing writes to the client's stream once this returns
		return 0, ctx.Err()
	}
}
