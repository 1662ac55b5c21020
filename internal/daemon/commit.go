package daemon

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/berth-net/berth/internal/api"
	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/runtime/image"
)

// CommitContainer is commitContainer, timed for the metrics when it succeeds
// (moby's container action "commit").
func (d *Daemon) CommitContainer(ctx context.Context, ref string, opts api.CommitOptions) (string, error) {
	start := time.Now()
	id, err := d.commitContainer(ctx, ref, opts)
	if err == nil {
		d.metrics.timeContainer("commit", start)
	}
	return id, err
}

// CommitContainer is docker commit, as moby's CreateImageFromContainer: an
// image of the container's root filesystem (its image's tree with what the
// container changed, not its volumes or binds) whose config is the
// container's, or the request's with the container's where it says
// nothing, with the --change instructions applied. A running container is
// paused meanwhile unless the request says not to (pause and unpause
// events, as moby's). The image is tagged when the request names a
// repository; the container's commit event carries the image's ID and
// name.
func (d *Daemon) commitContainer(ctx context.Context, ref string, opts api.CommitOptions) (string, error) {
	cs, err := d.lookup(ref)
	if err != nil {
		return "", err
	}
	cs.mu.Lock()
	if cs.goneLocked() {
		cs.mu.Unlock()
		return "", errdefs.NotFound("No such container: %s", ref)
	}
	if cs.c.State.Status == container.StatusDead {
		cs.mu.Unlock()
		return "", errdefs.Conflict("You cannot commit container %s which is Dead", cs.c.ID)
	}
	if cs.removing {
		cs.mu.Unlock()
		return "", errdefs.Conflict("You cannot commit container %s which is being removed", cs.c.ID)
	}
	c := cloneContainer(cs.c)
	pause := opts.Pause && c.Running() && !c.Paused()
	cs.mu.Unlock()

	// As moby's: the changes go onto the request's config (or the
	// container's), and then the container's fills in what the request's
	// left out.
	base := opts.Config
	if base == nil {
		base = imageConfigOf(c.Config)
	}
	cfg, err := image.ApplyChanges(base, opts.Changes)
	if err != nil {
		return "", err
	}
	if opts.Config != nil {
		cfg = mergeCommitConfig(cfg, c.Config)
	}
	if pause && d.PauseContainer(ctx, c.ID) == nil {
		defer func() {
			if err := d.UnpauseContainer(context.WithoutCancel(ctx), c.ID); err != nil {
				d.log.Warn("unpause after a commit", "id", c.ShortID(), "err", err)
			}
		}()
	}
	// The parent's tree is linked from without the images' lock (a long
	// commit held every create behind a removal waiting for it): the
	// container uses the parent, so no removal takes it meanwhile.
	d.imagesMu.RLock()
	parent, err := d.images.Get(c.Config.ImageID)
	d.imagesMu.RUnlock()
	if err != nil {
		return "", err
	}
	img, err := d.images.Commit(image.CommitSpec{Parent: parent, Config: cfg, Author: opts.Author, Comment: opts.Comment,
		CreatedBy: strings.Join(c.Config.Cmd, " "), ContainerID: c.ID, Repo: opts.Repo, Tag: opts.Tag},
		func(rootfs string) (image.Tree, error) {
			t, err := d.runtime.CommitTree(ctx, c.ID, parent.RootfsDir, rootfs)
			if err == nil && d.removedMeanwhile(cs) {
				// Its files went while they were read: what the walk
				// found is not the container's.
				err = errdefs.Conflict("container %s was removed during the commit", c.ID)
			}
			return image.Tree{DiffID: t.DiffID, DiffSize: t.DiffSize, Size: t.Size}, err
		})
	if err != nil {
		return "", err
	}
	// moby's CommitImage logs the image's create, then the tag's event.
	d.imageEvent(img.ID, img.ID, "create", imageLabels(img))
	imageRef := ""
	if opts.Repo != "" {
		imageRef = tagName(opts.Repo, opts.Tag)
		d.imageEvent(img.ID, imageRef, "tag", imageLabels(img))
	}
	d.containerEvent(c, "commit", map[string]string{"comment": opts.Comment, "imageID": img.ID, "imageRef": imageRef})
	return img.ID, nil
}

// removedMeanwhile says whether cs is gone or going (docker rm during a
// commit).
func (d *Daemon) removedMeanwhile(cs *ctrState) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.goneLocked() || cs.removing
}

// mergeCommitConfig is a commit request's config (req, its changes
// applied) with the container's (already its image's merged with what it
// was created with) wherever req says nothing, as moby's merge.
func mergeCommitConfig(req *image.Config, cfg container.Config) *image.Config {
	own := imageConfigOf(cfg)
	merged := container.Config{User: req.User, Env: slices.Clone(req.Env), Cmd: slices.Clone(req.Cmd),
		Entrypoint: slices.Clone(req.Entrypoint), WorkingDir: req.WorkingDir, Labels: req.Labels,
		ExposedPorts: slices.Clone(req.ExposedPorts), StopSignal: req.StopSignal, Healthcheck: req.Healthcheck}
	if merged.Labels == nil {
		merged.Labels = map[string]string{} // moby's merge makes one
	}
	mergeImageConfig(&merged, own)
	out := imageConfigOf(merged)
	out.OnBuild = slices.Clone(req.OnBuild) // the request's (and its changes'): moby's merge leaves it alone
	out.Volumes = slices.Clone(req.Volumes)
	for _, v := range own.Volumes {
		if !slices.Contains(out.Volumes, v) {
			out.Volumes = append(out.Volumes, v)
		}
	}
	return out
}

// imageConfigOf is the part of a container's config an image keeps.
func imageConfigOf(cfg container.Config) *image.Config {
	out := &image.Config{User: cfg.User, Env: slices.Clone(cfg.Env), Cmd: slices.Clone(cfg.Cmd),
		Entrypoint: slices.Clone(cfg.Entrypoint), WorkingDir: cfg.WorkingDir, ExposedPorts: slices.Clone(cfg.ExposedPorts),
		StopSignal: cfg.StopSignal, Volumes: slices.Clone(cfg.Volumes)}
	if len(cfg.Labels) > 0 {
		out.Labels = make(map[string]string, len(cfg.Labels))
		for k, v := range cfg.Labels {
			out.Labels[k] = v
		}
	}
	if h := cfg.Healthcheck; h != nil {
		c := *h
		c.Test = slices.Clone(h.Test)
		out.Healthcheck = &c
	}
	return out
}
