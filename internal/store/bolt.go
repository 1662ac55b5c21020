package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// lockTimeout bounds the wait for bbolt's exclusive file lock. A daemon
// that exited has released it (flock dies with the process), so a longer
// wait only ever means a second daemon on the same data root.
const lockTimeout = time.Second

// Bolt is the daemon's Store: one bbolt file, a bucket per record kind
// (made on first Put), JSON values, with a write-ahead journal in front of
// it (path + ".journal"; see journal.go).
type Bolt struct {
	db   *bolt.DB
	path string
	j    *journal

	wmu    sync.Mutex // one writer at a time; guards closed, broken, checkpoint, unfolded and nextCheckpoint
	closed bool
	broken error // a failed fdatasync or a rotated journal that cannot go: refuse further writes
	// checkpoint is closed when the background checkpoint in progress
	// ends; nil when none runs.
	checkpoint chan struct{}
	// unfolded are the rotated journal's records (journal.old, the frozen
	// overlay) whose fold into bbolt failed (a full disk): the next
	// checkpoint tries them again, and no journal is rotated meanwhile.
	unfolded []op
	// nextCheckpoint is when a checkpoint that failed may be tried again.
	nextCheckpoint time.Time
	// foldHook, when set (tests), runs in a background checkpoint before
	// it writes to bbolt; commitHook, when set, fails the fold with its
	// error.
	foldHook   func()
	commitHook func() error
	// onFold, when set, hears of a fold that fails after one that did not,
	// and of the fold that works after failures (nil).
	onFold func(error)
}

// OnFold makes f hear when the background checkpoint starts failing (its
// error) and when it works again (nil), so that a full disk is reported
// once rather than at every retry. f must not call the store.
func (b *Bolt) OnFold(f func(error)) {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	b.onFold = f
}

// retryCheckpoint is how long a failed checkpoint waits before the next
// write tries it again.
const retryCheckpoint = time.Second

var _ Store = (*Bolt)(nil)

// removeOld removes a rotated journal at open (a test makes it fail).
var removeOld = os.Remove

// OpenBolt opens or creates the store file at path (mode 0600) and folds
// in what the journal holds from before a crash. When another process
// holds the file, it gives up after about a second with an error that
// wraps ErrLocked and names the data root, path's directory.
func OpenBolt(path string) (*Bolt, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("data root %q is in use by another berth daemon: %w", filepath.Dir(path), ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %q: %w", path, err)
	}
	j, err := openJournal(path + ".journal")
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %q: %w", path, err)
	}
	b := &Bolt{db: db, path: path, j: j}
	if err := b.replay(); err != nil {
		j.close()
		db.Close()
		return nil, fmt.Errorf("open store %q: replay journal: %w", path, err)
	}
	return b, nil
}

// replay folds into bbolt what a crash left: the records of a rotated
// journal whose background checkpoint did not finish, then the journal's.
func (b *Bolt) replay() error {
	var ops []op
	old, err := os.ReadFile(b.j.oldPath())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	oldRecs, err := decodeRecords(old)
	if err != nil {
		return fmt.Errorf("%s: %w", b.j.oldPath(), err)
	}
	for _, r := range oldRecs {
		ops = append(ops, r...)
	}
	recs, err := b.j.readRecords()
	if err != nil {
		return err
	}
	for _, r := range recs {
		ops = append(ops, r...)
	}
	// bbolt first, then the rotated journal goes, and the journal is
	// emptied last: a crash between any two steps replays records bbolt
	// already holds, in order, which changes nothing. Emptying the
	// journal before the rotated one is gone let a crash (or a refused
	// remove) replay the rotated records alone on top of newer values:
	// deleted records came back and overwritten ones rolled back.
	if err := b.commit(ops); err != nil {
		return err
	}
	if err := removeOld(b.j.oldPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := syncDir(filepath.Dir(b.j.oldPath())); err != nil { // as thaw
		return err
	}
	return b.j.reset()
}

// Update runs fn in a read-write transaction: committed if fn returns nil,
// rolled back if it returns an error (returned as is) or panics. It
// returns once the writes are on disk. One writer at a time. Do not call
// View, Update or Record inside fn.
func (b *Bolt) Update(fn func(Tx) error) error {
	d, err := b.Record(fn)
	if err != nil {
		return err
	}
	return d.Wait()
}

// Record is Update that returns as soon as the writes are in the journal
// (visible to every later transaction, and kept if this process dies),
// with a Durable that says when they are on disk. Their fdatasync is
// asked of the syncer, which runs it while the caller goes on.
func (b *Bolt) Record(fn func(Tx) error) (Durable, error) {
	return b.write(fn, true)
}

// Note is Record without starting the fdatasync: the writes reach the disk
// with the next Record's, or the next checkpoint.
func (b *Bolt) Note(fn func(Tx) error) error {
	_, err := b.write(fn, false)
	return err
}

// write journals fn's writes and, with sync set, starts their fdatasync.
// The sync starts under wmu: Close closes the syncer's channel under it.
func (b *Bolt) write(fn func(Tx) error, sync bool) (Durable, error) {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	if b.closed {
		return nil, fmt.Errorf("store %q: %w", b.path, ErrClosed)
	}
	if b.broken != nil {
		return nil, b.broken
	}
	if err := b.j.failed(); err != nil {
		// After a failed fdatasync nothing written since can be trusted to
		// reach the disk: refuse writes rather than half-commit them.
		b.broken = fmt.Errorf("store %q: %w", b.path, err)
		return nil, b.broken
	}
	ops, err := b.collect(fn)
	if err != nil {
		return nil, err
	}
	if len(ops) == 0 {
		return durableNow{}, nil
	}
	seq, err := b.j.append(ops)
	if err != nil {
		// This write only is refused: the journal's size did not move, so
		// the next append writes over whatever part of this record reached
		// the file (a torn tail, where a replay stops). A full disk
		// (growing the journal, or the write itself) then refuses writes
		// until there is room again, not until a restart (QA round 24).
		// A failed fdatasync stays final (failed, above).
		return nil, fmt.Errorf("store %q: %w", b.path, err)
	}
	d := durable{j: b.j, seq: seq}
	if b.checkpoint == nil && time.Now().After(b.nextCheckpoint) && (b.unfolded != nil || b.j.size >= checkpointBytes) {
		// The record is in the journal whatever happens here: a
		// checkpoint that cannot start is tried again later, and this
		// write succeeded. A failed fdatasync on the way is the journal's
		// failed(), which refuses the next write.
		if err := b.startCheckpointLocked(); err != nil {
			b.nextCheckpoint = time.Now().Add(retryCheckpoint)
		}
	}
	if sync {
		b.j.startSync()
	}
	return d, nil
}

// collect runs fn in a writable transaction and returns its writes; the
// transaction is released even if fn panics.
func (b *Bolt) collect(fn func(Tx) error) ([]op, error) {
	t, err := b.begin(true)
	if err != nil {
		return nil, err
	}
	defer t.release()
	if err := t.run(fn); err != nil {
		return nil, err
	}
	return t.ops, nil
}

// View runs fn in a read-only transaction that sees a consistent snapshot.
func (b *Bolt) View(fn func(Tx) error) error {
	t, err := b.begin(false)
	if err != nil {
		return err
	}
	defer t.release()
	return t.run(fn)
}

// Close folds the journal into bbolt, then releases the files and the
// lock; it waits for open transactions and a background checkpoint.
func (b *Bolt) Close() error {
	b.wmu.Lock()
	if b.closed {
		b.wmu.Unlock()
		return nil
	}
	b.closed = true
	if ch := b.checkpoint; ch != nil {
		b.wmu.Unlock()
		<-ch
		b.wmu.Lock()
	}
	defer b.wmu.Unlock()
	var errs []error
	if b.unfolded != nil && b.broken == nil {
		// The rotated journal's records first, or not the newer ones
		// either: replay folds journal.old before the journal, so the
		// journal must still hold what came after.
		err := b.commit(b.unfolded)
		if err == nil {
			err = b.j.thaw()
		}
		if err != nil {
			b.broken = fmt.Errorf("store %q: %w", b.path, err)
			errs = append(errs, b.broken)
		}
		b.unfolded = nil
	}
	if b.broken == nil {
		errs = append(errs, b.checkpointLocked())
	}
	errs = append(errs, b.j.close())
	if err := b.db.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close store %q: %w", b.path, err))
	}
	return errors.Join(errs...)
}

// checkpointLocked writes the overlay into bbolt and empties the journal.
// The caller holds wmu, and no background checkpoint runs.
func (b *Bolt) checkpointLocked() error {
	return b.fold(b.j.snapshot())
}

// startCheckpointLocked folds the journal into bbolt in the background
// (the caller holds wmu): the journal is rotated at once (journal.rotate)
// and writes go on into a new one while a goroutine commits the rotated
// records to bbolt. A checkpoint inline stalled the write that crossed
// checkpointBytes, and every write behind it, for the length of a bbolt
// commit of the whole overlay: about 50 ms every ~1,900 connects.
//
// A fold that fails (bbolt could not grow on a full disk) leaves the
// rotated journal and its frozen overlay as they are, which replay and
// reads handle as while it runs, and the next write after retryCheckpoint
// folds them again (without rotating), instead of refusing every write
// until a restart (review of QA round 24).
func (b *Bolt) startCheckpointLocked() error {
	ops, retrying := b.unfolded, b.unfolded != nil
	if ops == nil {
		var err error
		if ops, err = b.j.rotate(); err != nil {
			return err
		}
	}
	b.unfolded = nil
	done := make(chan struct{})
	b.checkpoint = done
	go func() {
		if b.foldHook != nil {
			b.foldHook()
		}
		err := b.commit(ops)
		folded := err == nil
		if folded {
			err = b.j.thaw()
		}
		b.wmu.Lock()
		switch {
		case !folded:
			b.unfolded = ops
			b.nextCheckpoint = time.Now().Add(retryCheckpoint)
		case err != nil && b.broken == nil:
			// bbolt holds the records, but journal.old cannot go: a
			// replay would fold it again over newer writes.
			b.broken = fmt.Errorf("store %q: %w", b.path, err)
		}
		b.checkpoint = nil
		onFold := b.onFold
		b.wmu.Unlock()
		// Heard before done closes: whoever waits for this checkpoint
		// (Close, a test) finds it told.
		switch {
		case onFold == nil:
		case !folded && !retrying:
			onFold(fmt.Errorf("store %q: %w", b.path, err))
		case folded && retrying:
			onFold(nil)
		}
		close(done)
	}()
	return nil
}

// fold commits ops to bbolt, then empties the journal and the overlay,
// which bbolt now covers.
func (b *Bolt) fold(ops []op) error {
	if err := b.commit(ops); err != nil {
		return err
	}
	return b.j.reset()
}

// commit writes ops into bbolt in one transaction (with bbolt's own fsyncs).
func (b *Bolt) commit(ops []op) error {
	if b.commitHook != nil {
		if err := b.commitHook(); err != nil {
			return fmt.Errorf("checkpoint into bbolt: %w", err)
		}
	}
	if len(ops) > 0 {
		err := b.db.Update(func(tx *bolt.Tx) error {
			for _, o := range ops {
				if o.Del {
					if bk := tx.Bucket([]byte(o.Bucket)); bk != nil {
						if err := bk.Delete([]byte(o.Key)); err != nil {
							return err
						}
					}
					continue
				}
				bk, err := tx.CreateBucketIfNotExists([]byte(o.Bucket))
				if err != nil {
					return err
				}
				if err := bk.Put([]byte(o.Key), o.Value); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("checkpoint into bbolt: %w", err)
		}
	}
	return nil
}

// begin opens a transaction: a bbolt read transaction under the overlay's
// read lock (taken first, so that a checkpoint cannot empty the overlay
// between the bbolt snapshot and the reads).
func (b *Bolt) begin(writable bool) (*boltTx, error) {
	b.j.mu.RLock()
	tx, err := b.db.Begin(false)
	if err != nil {
		b.j.mu.RUnlock()
		return nil, b.closedErr(err)
	}
	t := &boltTx{tx: tx, j: b.j, writable: writable}
	if writable {
		t.local = map[string]map[string][]byte{}
	}
	return t, nil
}

// closedErr gives bbolt's "database not open" our ErrClosed.
func (b *Bolt) closedErr(err error) error {
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return fmt.Errorf("store %q: %w", b.path, ErrClosed)
	}
	return err
}

// boltTx reads, newest first, its own writes (local), the journal's
// overlay, the records a background checkpoint is folding (frozen), then
// bbolt's snapshot; its writes are collected as ops.
type boltTx struct {
	tx       *bolt.Tx
	j        *journal
	writable bool
	local    map[string]map[string][]byte // bucket → key → value; nil = deleted
	ops      []op
	done     bool // a Tx must not be touched after its function returns
}

func (t *boltTx) run(fn func(Tx) error) error {
	defer func() { t.done = true }()
	return fn(t)
}

func (t *boltTx) release() {
	t.tx.Rollback()
	t.j.mu.RUnlock()
}

func (t *boltTx) check(bucket, key string, write bool) error {
	if t.done {
		return ErrTxDone
	}
	if err := checkNames(bucket, key); err != nil {
		return err
	}
	if write && !t.writable {
		return fmt.Errorf("%q in bucket %q: %w", key, bucket, ErrReadOnly)
	}
	return nil
}

// raw returns the current value of bucket/key, nil if absent or deleted.
func (t *boltTx) raw(bucket, key string) []byte {
	if v, ok := t.local[bucket][key]; ok {
		return v
	}
	if v, ok := t.j.overlay[bucket][key]; ok {
		return v
	}
	if v, ok := t.j.frozen[bucket][key]; ok {
		return v
	}
	if b := t.tx.Bucket([]byte(bucket)); b != nil {
		return b.Get([]byte(key))
	}
	return nil
}

func (t *boltTx) Get(bucket, key string, v any) error {
	if err := t.check(bucket, key, false); err != nil {
		return err
	}
	raw := t.raw(bucket, key)
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
	t.set(bucket, key, raw)
	t.ops = append(t.ops, op{Bucket: bucket, Key: key, Value: raw})
	return nil
}

func (t *boltTx) Delete(bucket, key string) error {
	if err := t.check(bucket, key, true); err != nil {
		return err
	}
	t.set(bucket, key, nil)
	t.ops = append(t.ops, op{Bucket: bucket, Key: key, Del: true})
	return nil
}

func (t *boltTx) set(bucket, key string, raw []byte) {
	m := t.local[bucket]
	if m == nil {
		m = map[string][]byte{}
		t.local[bucket] = m
	}
	m[key] = raw
}

// ForEach passes raw JSON that is only valid until fn returns; fn must copy
// what it keeps. It merges bbolt's records with newer ones (overlay, then
// this transaction's own writes) in key order. fn must not Put or Delete
// in the same bucket.
func (t *boltTx) ForEach(bucket string, fn func(key string, raw []byte) error) error {
	if err := t.check(bucket, "-", false); err != nil {
		return err
	}
	newer := map[string][]byte{}
	for k, v := range t.j.frozen[bucket] {
		newer[k] = v
	}
	for k, v := range t.j.overlay[bucket] {
		newer[k] = v
	}
	for k, v := range t.local[bucket] {
		newer[k] = v
	}
	keys := make([]string, 0, len(newer))
	for k := range newer {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	i := 0
	// emitNewer passes the newer records whose keys sort before limit
	// (all of them when all is set), skipping deletions.
	emitNewer := func(limit string, all bool) error {
		for ; i < len(keys) && (all || keys[i] < limit); i++ {
			if v := newer[keys[i]]; v != nil {
				if err := fn(keys[i], v); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if b := t.tx.Bucket([]byte(bucket)); b != nil {
		err := b.ForEach(func(kb, v []byte) error {
			if v == nil { // a nested bucket; berth makes none
				return nil
			}
			k := string(kb)
			if err := emitNewer(k, false); err != nil {
				return err
			}
			if _, ok := newer[k]; ok {
				return nil // emitted (or deleted) from the newer records
			}
			return fn(k, v)
		})
		if err != nil {
			return err
		}
	}
	return emitNewer("", true)
}
