// Package image stores container images as plain root filesystem trees
// under <data-root>/images, with their metadata in berth's store:
// imported from a tarball of a root file system (docker import), loaded
// from the archive docker save writes (docker load), its layers applied
// in order into one tree, or committed from a container (docker commit):
// its image's tree hard-linked with the container's changes copied in.
package image

import (
	"maps"
	"slices"
	"time"

	"github.com/berth-net/berth/internal/container"
)

// Image is one stored root filesystem.
type Image struct {
	ID        string    `json:"id"` // "sha256:<64 hex>": of the imported tar stream, or of a loaded image's config
	RepoTags  []string  `json:"repoTags"`
	Created   time.Time `json:"created"`
	Size      int64     `json:"size"` // bytes of file content in the tree
	Comment   string    `json:"comment,omitempty"`
	RootfsDir string    `json:"rootfsDir"`
	// Config is what a loaded image's config gives its containers
	// (docker load); nil for an imported one.
	Config *Config `json:"config,omitempty"`
	// Layers are the digests of the uncompressed layers the tree was made
	// from, bottom first (the config's rootfs.diff_ids): the imported tar's
	// one, or a loaded image's. Empty for images recorded before berth
	// kept them.
	Layers []string `json:"layers,omitempty"`
	// Tree says how the tree was made from Layers: "import" (a root
	// filesystem tar, taken as it is), "layers" (docker load: layers
	// applied with their whiteouts) or "commit" (a container's changes
	// over its image's tree, never shared). Only trees made the same way
	// from the same layers are shared; "" (older records) shares nothing.
	Tree string `json:"tree,omitempty"`
	// LayerSizes are the bytes of file content each of Layers brought,
	// for docker history (empty for images recorded before berth kept
	// them).
	LayerSizes []int64 `json:"layerSizes,omitempty"`
	// History is the image config's history, oldest first: one entry per
	// instruction that made the image, those that made a layer matching
	// Layers in order.
	History []History `json:"history,omitempty"`
	// Parent is the ID of the image a commit was made from; Author is
	// docker commit's --author.
	Parent string `json:"parent,omitempty"`
	Author string `json:"author,omitempty"`
	// LastTagTime is when the image last got a tag (moby's
	// SetLastUpdated: image inspect's Metadata.LastTagTime).
	LastTagTime time.Time `json:"lastTagTime,omitzero"`
	// BuildKey is the cache key of the docker build step that made the
	// image (its parent, what the step did, the config it left), by
	// which a later build's same step finds it instead of running again.
	BuildKey string `json:"buildKey,omitempty"`
}

// History is one entry of an image config's history (the OCI image
// spec's), as docker history shows it.
type History struct {
	Created    time.Time `json:"created"`
	CreatedBy  string    `json:"created_by,omitempty"`
	Author     string    `json:"author,omitempty"`
	Comment    string    `json:"comment,omitempty"`
	EmptyLayer bool      `json:"empty_layer,omitempty"`
}

// HistoryItem is one line of docker history: an entry of the image's
// history with the size of the layer it made (0 for none).
type HistoryItem struct {
	History
	Size int64
}

// HistoryItems are img's history entries, newest first, with the sizes of
// the layers they made, as moby's ImageHistory pairs them (each entry
// that is not an empty layer takes the next layer). An image recorded
// before berth kept its history gets one entry per layer, with the
// image's time and comment.
func (img *Image) HistoryItems() []HistoryItem {
	hist := img.History
	if len(hist) == 0 {
		n := max(len(img.Layers), 1)
		for range n {
			hist = append(hist, History{Created: img.Created, Comment: img.Comment})
		}
	}
	out := make([]HistoryItem, 0, len(hist))
	layer := 0
	for _, h := range hist {
		it := HistoryItem{History: h}
		if !h.EmptyLayer {
			switch {
			case layer < len(img.LayerSizes):
				it.Size = img.LayerSizes[layer]
			case layer == 0 && len(img.Layers) <= 1:
				it.Size = img.Size // an import: one layer, the whole tree
			}
			layer++
		}
		out = append(out, it)
	}
	slices.Reverse(out)
	return out
}

// Config is the part of an image's config (the OCI image config's
// "config") that a container inherits where it does not set its own:
// moby's merge.
type Config struct {
	User         string                  `json:"user,omitempty"`
	Env          []string                `json:"env,omitempty"`
	Cmd          []string                `json:"cmd,omitempty"`
	Entrypoint   []string                `json:"entrypoint,omitempty"`
	WorkingDir   string                  `json:"workingDir,omitempty"`
	ExposedPorts []string                `json:"exposedPorts,omitempty"` // "80/tcp"
	Labels       map[string]string       `json:"labels,omitempty"`
	StopSignal   string                  `json:"stopSignal,omitempty"`
	Healthcheck  *container.HealthConfig `json:"healthcheck,omitempty"`
	// Shell is the SHELL a Dockerfile set: what shell-form RUN, CMD and
	// ENTRYPOINT instructions run in (/bin/sh -c when empty).
	Shell []string `json:"shell,omitempty"`
	// Volumes are the image's VOLUME paths, where its containers get
	// anonymous volumes.
	Volumes []string `json:"volumes,omitempty"`
	// OnBuild are ONBUILD triggers (docker commit/import --change, a
	// loaded config's), kept and shown: berth builds nothing to run them.
	OnBuild []string `json:"onBuild,omitempty"`
}

// Clone is a deep copy of c (nil for nil).
func (c *Config) Clone() *Config {
	if c == nil {
		return nil
	}
	out := *c
	out.Env, out.Cmd, out.Entrypoint = slices.Clone(c.Env), slices.Clone(c.Cmd), slices.Clone(c.Entrypoint)
	out.ExposedPorts, out.Volumes, out.OnBuild = slices.Clone(c.ExposedPorts), slices.Clone(c.Volumes), slices.Clone(c.OnBuild)
	out.Shell = slices.Clone(c.Shell)
	out.Labels = maps.Clone(c.Labels)
	if c.Healthcheck != nil {
		h := *c.Healthcheck
		h.Test = slices.Clone(h.Test)
		out.Healthcheck = &h
	}
	return &out
}
