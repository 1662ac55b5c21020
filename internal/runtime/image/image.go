// Package image stores container images as plain root filesystem trees
// imported from tarballs (docker import / berth import) under
// <data-root>/images, with their metadata in berth's store.
package image

import "time"

// Image is one imported root filesystem.
type Image struct {
	ID        string    `json:"id"` // "sha256:<64 hex>" of the imported tar stream
	RepoTags  []string  `json:"repoTags"`
	Created   time.Time `json:"created"`
	Size      int64     `json:"size"` // bytes of file content in the tree
	Comment   string    `json:"comment,omitempty"`
	RootfsDir string    `json:"rootfsDir"`
}
