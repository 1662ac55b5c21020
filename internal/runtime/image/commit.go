package image

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/berth-net/berth/internal/reference"
)

// EmptyLayer is the diff ID of a layer without changes: the digest of an
// empty tar (its two zero blocks), moby's layer.EmptyLayer.
const EmptyLayer = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"

// CommitSpec is what docker commit gives the image it makes from a
// container of Parent.
type CommitSpec struct {
	Parent *Image
	// Config is the new image's: the container's, with the commit's
	// changes (ApplyChanges).
	Config          *Config
	Author, Comment string
	// CreatedBy is the container's command, as moby's history has it.
	CreatedBy   string
	ContainerID string
	// Repo and Tag, when Repo is not "", tag the new image (a tag
	// defaults to "latest").
	Repo, Tag string
}

// Tree is what a build of a committed tree made: its layer's diff ID, the
// bytes of file content the layer holds, and those of the whole tree.
type Tree struct {
	DiffID         string
	DiffSize, Size int64
}

// Commit records the image docker commit makes, as moby's NewChildImage:
// build makes its root filesystem at the path it is given, which does not
// exist yet (the runtime's CommitTree); the image's layers and history are
// the parent's and the commit's (an entry without a layer when the
// container changed nothing), its ID the digest of what describes it,
// which the time of the commit makes new each time. Tagged when spec
// names a repository, the tag taken from any image that had it.
func (s *Store) Commit(spec CommitSpec, build func(rootfs string) (Tree, error)) (*Image, error) {
	ref, err := reference.WithTag(spec.Repo, spec.Tag)
	if err != nil {
		return nil, err
	}
	parent := spec.Parent
	tmp, err := os.MkdirTemp(s.dir, tmpPrefix)
	if err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	defer os.RemoveAll(tmp) // gone already when the commit succeeded
	tree, err := build(filepath.Join(tmp, "rootfs"))
	if err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	created := time.Now().UTC()
	img := &Image{Size: tree.Size, Config: spec.Config, Created: created, Tree: treeCommit,
		Parent: parent.ID, Author: spec.Author}
	img.Layers, img.LayerSizes, img.History = parentLayers(parent)
	entry := History{Created: created, CreatedBy: spec.CreatedBy, Author: spec.Author, Comment: spec.Comment}
	if tree.DiffID == EmptyLayer {
		entry.EmptyLayer = true
	} else {
		img.Layers, img.LayerSizes = append(img.Layers, tree.DiffID), append(img.LayerSizes, tree.DiffSize)
	}
	img.History = append(img.History, entry)
	b, err := json.Marshal(struct {
		Parent    string    `json:"parent"`
		Container string    `json:"container"`
		Config    *Config   `json:"config,omitempty"`
		Author    string    `json:"author,omitempty"`
		Created   time.Time `json:"created"`
		Layers    []string  `json:"layers"`
		History   []History `json:"history"`
	}{parent.ID, spec.ContainerID, spec.Config, spec.Author, created, img.Layers, img.History})
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	img.ID = "sha256:" + hex.EncodeToString(sum[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	adopted, err := s.adoptWith(tmp, img, "")
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", img.ID, err)
	}
	if ref == "" {
		return adopted, nil
	}
	return s.tag(adopted.ID, ref)
}

// parentLayers are parent's layers, their sizes and its history, as a
// child image starts from them: an image recorded before berth kept its
// layers has its ID as its one layer (as image inspect shows it), and
// one without history or sizes gets them as HistoryItems makes them up.
func parentLayers(parent *Image) ([]string, []int64, []History) {
	layers := slices.Clone(parent.Layers)
	if len(layers) == 0 {
		layers = []string{parent.ID}
	}
	items := parent.HistoryItems()
	slices.Reverse(items)
	hist := make([]History, len(items))
	sizes := make([]int64, 0, len(layers))
	for i, it := range items {
		hist[i] = it.History
		if !it.EmptyLayer {
			sizes = append(sizes, it.Size)
		}
	}
	for len(sizes) < len(layers) {
		sizes = append(sizes, 0)
	}
	return layers, sizes[:len(layers)], hist
}
