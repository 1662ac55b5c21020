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

	"github.com/berth-net/berth/internal/errdefs"
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
	// BuildKey: Image.BuildKey, for a docker build step's image.
	BuildKey string
	// Adopted, if set, is called with the new image while the store's
	// lock is still held (a build holds it from prune so).
	Adopted func(*Image)
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
	tmp, err := os.MkdirTemp(s.dir, tmpPrefix)
	if err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	defer os.RemoveAll(tmp) // gone already when the commit succeeded
	tree, err := build(filepath.Join(tmp, "rootfs"))
	if err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	img, err := child(spec, tree)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	adopted, err := s.adoptWith(tmp, img, "")
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", img.ID, err)
	}
	s.indexBuilt(adopted)
	if spec.Adopted != nil {
		spec.Adopted(adopted)
	}
	if ref == "" {
		return adopted, nil
	}
	return s.tag(adopted.ID, ref)
}

// child is the record of spec's image with tree (a tree of its own, or
// its parent's with EmptyLayer): the parent's layers and history with
// the step's, its ID the digest of what describes it, which the time
// makes new each time.
func child(spec CommitSpec, tree Tree) (*Image, error) {
	created := time.Now().UTC()
	parentID := ""
	if spec.Parent != nil {
		parentID = spec.Parent.ID
	}
	img := &Image{Size: tree.Size, Config: spec.Config, Created: created, Tree: treeCommit,
		Parent: parentID, Author: spec.Author, BuildKey: spec.BuildKey}
	if spec.Parent != nil {
		img.Layers, img.LayerSizes, img.History = parentLayers(spec.Parent)
	}
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
		BuildKey  string    `json:"buildKey,omitempty"`
	}{parentID, spec.ContainerID, spec.Config, spec.Author, created, img.Layers, img.History, spec.BuildKey})
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	img.ID = "sha256:" + hex.EncodeToString(sum[:])
	return img, nil
}

// Derive records a child of spec.Parent that changed its config only (a
// docker build step such as ENV or CMD): it uses the parent's tree, which
// stays while the child does (a parent with children is not removed),
// and its history entry made no layer.
func (s *Store) Derive(spec CommitSpec) (*Image, error) {
	if spec.Parent == nil {
		return nil, errdefs.Invalid("derive: no parent image")
	}
	img, err := child(spec, Tree{DiffID: EmptyLayer, Size: spec.Parent.Size})
	if err != nil {
		return nil, err
	}
	img.Tree = spec.Parent.Tree
	s.mu.Lock()
	defer s.mu.Unlock()
	adopted, err := s.adoptWith("", img, spec.Parent.RootfsDir)
	if err == nil {
		s.indexBuilt(adopted)
	}
	if err == nil && spec.Adopted != nil {
		spec.Adopted(adopted)
	}
	return adopted, err
}

// Built is the newest image a docker build step with key made that ok
// takes (nil: any), or nil. The images of a key come from an index (the
// store's images listed once, then each build step's added as it is
// recorded), each read as one record: a cache probe does not list every
// image. An ID whose image went is skipped.
func (s *Store) Built(key string, ok func(*Image) bool) (*Image, error) {
	ids, err := s.builtIDs(key)
	if err != nil {
		return nil, err
	}
	var found *Image
	for _, id := range ids {
		img, err := s.byID(id)
		if errdefs.Is(err, errdefs.KindNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if (ok == nil || ok(img)) && (found == nil || img.Created.After(found.Created)) {
			found = img
		}
	}
	return found, nil
}

// builtIDs are the IDs indexed under key, the index made on first use.
func (s *Store) builtIDs(key string) ([]string, error) {
	s.builtMu.Lock()
	defer s.builtMu.Unlock()
	if s.built == nil {
		imgs, err := s.List()
		if err != nil {
			return nil, err
		}
		s.built = map[string][]string{}
		for _, img := range imgs {
			if img.BuildKey != "" {
				s.built[img.BuildKey] = append(s.built[img.BuildKey], img.ID)
			}
		}
	}
	ids := slices.Clone(s.built[key])
	// Drop what went (a removal does not tell the index).
	live := s.built[key][:0]
	for _, id := range s.built[key] {
		if _, err := s.byID(id); err == nil {
			live = append(live, id)
		}
	}
	s.built[key] = live
	return ids, nil
}

// indexBuilt adds img to the build index, once it is made (nothing to do
// before the index is: its first use lists the store).
func (s *Store) indexBuilt(img *Image) {
	if img.BuildKey == "" {
		return
	}
	s.builtMu.Lock()
	defer s.builtMu.Unlock()
	if s.built != nil && !slices.Contains(s.built[img.BuildKey], img.ID) {
		s.built[img.BuildKey] = append(s.built[img.BuildKey], img.ID)
	}
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
