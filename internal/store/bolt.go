package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// lockTimeout bounds the wait for bbolt's exclusive file lock. A daemon
// that exited has released it (flock dies with the process), so a longer
// wait only ever means a second daemon on the same data root.
const lockTimeout = time.Second

// Bolt is the daemon's Store: one bbolt file, a bucket per record kind
// (made on first Put), JSON values.
type Bolt struct {
	db   *bolt.DB
	path string
}

var _ Store = (*Bolt)(nil)

// OpenBolt opens or creates the store file at path (mode 0600). When another
// process holds it, it gives up after about a second with an error that
// wraps ErrLocked and names the data root, path's directory.
func OpenBolt(path string) (*Bolt, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("data root %q is in use by another berth daemon: %w", filepath.Dir(path), ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %q: %w", path, err)
	}
	return &Bolt{db: db, path: path}, nil
}

// Update runs fn in a read-write transaction: committed if fn returns nil,
// rolled back if it returns an error (returned as is) or panics. One writer
// at a time. Do not call View or Update inside fn.
func (b *Bolt) Update(fn func(Tx) error) error {
	return b.closedErr(b.db.Update(func(tx *bolt.Tx) error {
		t := &boltTx{tx: tx}
		defer t.end()
		return fn(t)
	}))
}

// View runs fn in a read-only transaction that sees a consistent snapshot.
func (b *Bolt) View(fn func(Tx) error) error {
	return b.closedErr(b.db.View(func(tx *bolt.Tx) error {
		t := &boltTx{tx: tx}
		defer t.end()
		return fn(t)
	}))
}

// Close releases the file and its lock; it waits for open transactions.
func (b *Bolt) Close() error {
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("close store %q: %w", b.path, err)
	}
	return nil
}

// closedErr gives bbolt's "database not open" our ErrClosed; bbolt checks
// that before it calls fn, so it cannot be fn's own error.
func (b *Bolt) closedErr(err error) error {
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return fmt.Errorf("store %q: %w", b.path, ErrClosed)
	}
	return err
}

type boltTx struct {
	tx   *bolt.Tx
	done bool // a bolt.Tx must not be touched after its function returns
}

func (t *boltTx) end() { t.done = true }

func (t *boltTx) check(bucket, key string, write bool) error {
	if t.done {
		return ErrTxDone
	}
	if err := checkNames(bucket, key); err != nil {
		return err
	}
	if write && !t.tx.Writable() {
		return fmt.Errorf("%q in bucket %q: %w", key, bucket, ErrReadOnly)
	}
	return nil
}

func (t *boltTx) Get(bucket, key string, v any) error {
	if err := t.check(bucket, key, false); err != nil {
		return err
	}
	b := t.tx.Bucket([]byte(bucket))
	if b == nil {
		return notFound(bucket, key)
	}
	raw := b.Get([]byte(key))
	if raw == nil {
		return notFound(bucket, key)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("decode record %q in bucket %q: %w", key, bucket, err)
	}
	return nil
}

func (t *boltTx) Put(bucket, key string, v any) error {
	if err := t.check(bucket, key, true); err != nil {
		return err
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode record %q in bucket %q: %w", key, bucket, err)
	}
	b, err := t.tx.CreateBucketIfNotExists([]byte(bucket))
	if err != nil {
		return fmt.Errorf("create bucket %q: %w", bucket, err)
	}
	if err := b.Put([]byte(key), raw); err != nil {
		return fmt.Errorf("put record %q in bucket %q: %w", key, bucket, err)
	}
	return nil
}

func (t *boltTx) Delete(bucket, key string) error {
	if err := t.check(bucket, key, true); err != nil {
		return err
	}
	b := t.tx.Bucket([]byte(bucket))
	if b == nil {
		return nil
	}
	if err := b.Delete([]byte(key)); err != nil {
		return fmt.Errorf("delete record %q in bucket %q: %w", key, bucket, err)
	}
	return nil
}

// ForEach passes raw JSON that is only valid until fn returns (it points
// into bbolt's memory map); fn must copy what it keeps. It must not Put or
// Delete in the same bucket.
func (t *boltTx) ForEach(bucket string, fn func(key string, raw []byte) error) error {
	if err := t.check(bucket, "-", false); err != nil {
		return err
	}
	b := t.tx.Bucket([]byte(bucket))
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error {
		if v == nil { // a nested bucket; berth makes none
			return nil
		}
		return fn(string(k), v)
	})
}
