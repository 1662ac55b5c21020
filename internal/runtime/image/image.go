// Package image stores container images as plain root filesystem trees
// under <data-root>/images, with their metadata in berth's store:
// imported from a tarball of a root file system (docker import), or
// loaded from the archive docker save writes (docker load), its layers
// applied in order into one tree.
package image

import (
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
	// filesystem tar, taken as it is) or "layers" (docker load: layers
	// applied with their whiteouts). Only trees made the same way from
	// the same layers are shared; "" (older records) shares nothing.
	Tree string `json:"tree,omitempty"`
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
	// Volumes are the image's VOLUME paths, shown but not made: berth
	// has no volumes, and a container writes them in its own layer.
	Volumes []string `json:"volumes,omitempty"`
}
