// Package store keeps berth's persistent state — networks, endpoints,
// sandboxes, containers, images — as JSON records in named buckets, behind a
// small interface with a bbolt implementation (the daemon's: bbolt behind a
// write-ahead journal, see journal.go) and an in-memory one (for tests). It
// knows nothing of what the records mean.
package store

import "errors"

// ErrNotFound is returned by Get for a missing key.
var ErrNotFound = errors.New("not found")

// Buckets used by berth.
const (
	BucketNetworks   = "networks"
	BucketEndpoints  = "endpoints"
	BucketSandboxes  = "sandboxes"
	BucketContainers = "containers"
	BucketImages     = "images"
	BucketVolumes    = "volumes"
	BucketMeta       = "meta"
)

// Tx is one read-write or read-only transaction.
type Tx interface {
	// Get decodes the record at bucket/key into v; ErrNotFound if absent.
	Get(bucket, key string, v any) error
	// Put encodes v as JSON and stores it at bucket/key.
	Put(bucket, key string, v any) error
	// Delete removes bucket/key; a missing key is not an error.
	Delete(bucket, key string) error
	// ForEach calls fn for every record in bucket, in key order, with its raw JSON.
	ForEach(bucket string, fn func(key string, raw []byte) error) error
}

// Store is a transactional JSON record store.
type Store interface {
	// Update runs fn in a read-write transaction, committed if fn returns
	// nil; it returns once the writes are on disk.
	Update(fn func(Tx) error) error
	// Record is Update returning as soon as later transactions see the
	// writes and a crash of this process would keep them; the Durable says
	// when they are also on disk. A caller starts its slow work (kernel
	// calls) between Record and Wait, so that the two overlap.
	Record(fn func(Tx) error) (Durable, error)
	// Note is Record for writes nobody waits for: they are kept if this
	// process dies, and reach the disk with a later Record or Update.
	Note(fn func(Tx) error) error
	// View runs fn in a read-only transaction.
	View(fn func(Tx) error) error
	Close() error
}
