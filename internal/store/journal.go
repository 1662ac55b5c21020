package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// The journal is the store's write-ahead log. Every write (Update or
// Record) is appended to it as one checksummed record and kept in memory
// (the overlay, which Views read before bbolt); bbolt is the checkpoint the
// overlay is folded into at Close, at the next Open (which replays whatever
// a crash left), and, in the background, once the journal grows past
// checkpointBytes: the file is then renamed to journal.old with its
// overlay frozen, writes go on into a new journal, and journal.old goes
// once bbolt holds its records (a crash before that replays it first).
//
// Why: a bbolt commit waits for two fdatasyncs (data, then meta page),
// 1.5-4 ms on these machines, and a connect used to wait for three
// commits. A journal append is one write(2): once it returns, the record
// survives a crash of the daemon (the kernel has it), which is what
// "intent before kernel work" needs, since the kernel objects a daemon
// makes do not outlive a power loss either. Only the caller's answer must
// also survive a power loss; Durable.Wait gives that with one fdatasync,
// shared by every record written before it started, and callers start it
// before their kernel work so that the two overlap.
//
// Record layout: 4-byte little-endian payload length, 4-byte CRC-32C of the
// payload, payload: the byte 'B' then, per op, the bucket, the key, a flag
// byte (1: deletion) and the value, each string uvarint-length-prefixed.
// (Payloads of journals written before that format are a JSON array of
// ops, and start with '[': replay reads both.) The values are JSON already;
// encoding the ops as JSON again cost a connect a second pass over the
// container's whole record. Replay stops at the first record that is
// short or fails its checksum: a torn tail from a crash mid-append. Ops
// are whole values, so replaying records that a checkpoint already folded
// in (a crash between the bbolt commit and the truncation) is harmless.

// checkpointBytes is the journal size that triggers a checkpoint.
const checkpointBytes = 4 << 20

// preallocBytes is the step by which the journal file grows, written with
// zeros ahead of the records. An append then rewrites blocks the file
// already has, and its fdatasync flushes the data alone; an append that
// grew the file would also make the fdatasync commit the file system's
// own journal (the new size and blocks). Replay stops at the zeros: a
// record never has length 0.
const preallocBytes = 1 << 20

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// op is one write: a value, or a deletion when Del is set.
type op struct {
	Bucket string          `json:"b"`
	Key    string          `json:"k"`
	Value  json.RawMessage `json:"v,omitempty"`
	Del    bool            `json:"d,omitempty"`
}

// Durable says when writes would survive a power loss.
type Durable interface {
	// Wait returns once the writes are on stable storage, or the error
	// that kept them from it.
	Wait() error
}

// durableNow is a Durable that is already done.
type durableNow struct{ err error }

func (d durableNow) Wait() error { return d.err }

type journal struct {
	path  string
	f     *os.File
	size  int64 // where the next record goes
	alloc int64 // bytes of the file written so far (records, then zeros)
	// rename is os.Rename (a test makes rotate fail half-way).
	rename func(oldpath, newpath string) error

	// overlay holds the latest value of every key written since the last
	// checkpoint: bucket → key → value (nil = deleted). Transactions hold
	// mu for reading while they run; append changes it under the write lock.
	mu      sync.RWMutex
	overlay map[string]map[string][]byte
	// frozen is the overlay of the records in path+".old" while a
	// background checkpoint folds them into bbolt (rotate, thaw); reads
	// see overlay, then frozen, then bbolt.
	frozen map[string]map[string][]byte

	// sync state: records 1..written are in the file, 1..synced on disk.
	syncMu  sync.Mutex
	cond    *sync.Cond
	written uint64
	synced  uint64
	syncing bool
	syncErr error

	// kick starts a background fdatasync (Record's), so that it runs while
	// the caller does its slow work; syncerDone closes when the syncer ends.
	kick       chan struct{}
	syncerDone chan struct{}
}

func openJournal(path string) (*journal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	j := &journal{path: path, f: f, overlay: map[string]map[string][]byte{}, kick: make(chan struct{}, 1), syncerDone: make(chan struct{}), rename: os.Rename}
	j.cond = sync.NewCond(&j.syncMu)
	go j.syncer()
	return j, nil
}

// syncer runs one fdatasync per kick, covering every record written
// before it starts.
func (j *journal) syncer() {
	defer close(j.syncerDone)
	for range j.kick {
		j.syncMu.Lock()
		seq := j.written
		j.syncMu.Unlock()
		_ = j.wait(seq) // an error is kept in syncErr for the waiters
	}
}

// startSync asks the syncer for an fdatasync of the records written so
// far, unless one is already asked for. The caller only signals: the
// syncer's fdatasync sends the data itself, on a thread of its own, while
// the caller does its kernel work.
//
// Why not start the write-back from the caller (sync_file_range, which
// berth did from session 9 to 34, when the syncer was slow to get a CPU):
// sending the data to a virtio disk costs the caller about 45 µs (the
// queue's kick), a twentieth of a connect, and the syncer now has the
// data on disk before a connect's kernel work ends all the same (traced,
// 300 connects a side, two runs: the wait for the record after the
// kernel work 0.8-1.0 µs at p50 either way; the time in the store 60 →
// 19 µs at p50). See docs/benchmarks.md, session 35.
func (j *journal) startSync() {
	select {
	case j.kick <- struct{}{}:
	default:
	}
}

// readRecords returns the ops of every whole record in the journal, in
// order, and stops quietly at a torn tail.
func (j *journal) readRecords() ([][]op, error) {
	if _, err := j.f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(j.f)
	if err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	return decodeRecords(data)
}

// decodeRecords parses the whole records at the start of data, up to a
// torn tail. A record whose checksum holds but whose payload this
// version cannot read (a newer berth's format, or damage the checksum
// missed) is an error: stopping there, as at a torn tail, would drop it
// and every record after it, and the replay would then empty the
// journal for good.
func decodeRecords(data []byte) ([][]op, error) {
	var recs [][]op
	at := 0
	for len(data) >= 8 {
		n := binary.LittleEndian.Uint32(data[0:4])
		sum := binary.LittleEndian.Uint32(data[4:8])
		if n == 0 || uint64(n) > uint64(len(data)-8) {
			break // the zeros after the last record, or a torn one
		}
		payload := data[8 : 8+n]
		if crc32.Checksum(payload, crcTable) != sum {
			break
		}
		ops, ok := decodePayload(payload)
		if !ok {
			return nil, fmt.Errorf("journal record %d (byte %d) is whole but in a format this berth cannot read (written by a newer berth?); nothing was replayed or changed", len(recs)+1, at)
		}
		recs = append(recs, ops)
		data = data[8+n:]
		at += 8 + int(n)
	}
	return recs, nil
}

// encodeRecord frames ops as one journal record.
func encodeRecord(ops []op) ([]byte, error) {
	n := 9
	for _, o := range ops {
		n += 3*binary.MaxVarintLen32 + 1 + len(o.Bucket) + len(o.Key) + len(o.Value)
	}
	buf := make([]byte, 8, n)
	buf = append(buf, binaryPayload)
	for _, o := range ops {
		if len(o.Bucket) > maxField || len(o.Key) > maxField || len(o.Value) > maxField {
			return nil, fmt.Errorf("journal op %s/%s: too large", o.Bucket, o.Key)
		}
		buf = appendString(buf, o.Bucket)
		buf = appendString(buf, o.Key)
		if o.Del {
			buf = append(buf, 1)
			continue
		}
		buf = append(buf, 0)
		buf = binary.AppendUvarint(buf, uint64(len(o.Value)))
		buf = append(buf, o.Value...)
	}
	payload := buf[8:]
	binary.LittleEndian.PutUint32(buf[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(buf[4:8], crc32.Checksum(payload, crcTable))
	return buf, nil
}

// binaryPayload starts a payload in the binary op format; a JSON one
// (older journals) starts with '['.
const binaryPayload = 'B'

// maxField bounds one bucket name, key or value in a record.
const maxField = 1 << 30

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// decodePayload parses one record's ops, in either format; ok is false
// for a payload that is neither (replay stops there).
func decodePayload(p []byte) (ops []op, ok bool) {
	if len(p) == 0 {
		return nil, false
	}
	if p[0] == '[' {
		if err := json.Unmarshal(p, &ops); err != nil {
			return nil, false
		}
		return ops, true
	}
	if p[0] != binaryPayload {
		return nil, false
	}
	p = p[1:]
	field := func() ([]byte, bool) {
		n, k := binary.Uvarint(p)
		if k <= 0 || n > uint64(len(p)-k) {
			return nil, false
		}
		f := p[k : k+int(n)]
		p = p[k+int(n):]
		return f, true
	}
	for len(p) > 0 {
		bucket, ok1 := field()
		key, ok2 := field()
		if !ok1 || !ok2 || len(p) == 0 {
			return nil, false
		}
		flag := p[0]
		p = p[1:]
		o := op{Bucket: string(bucket), Key: string(key)}
		switch flag {
		case 1:
			o.Del = true
		case 0:
			v, ok := field()
			if !ok {
				return nil, false
			}
			o.Value = json.RawMessage(append([]byte(nil), v...))
		default:
			return nil, false
		}
		ops = append(ops, o)
	}
	return ops, true
}

// append writes ops as one record at the end of the journal and into the
// overlay; the caller serialises appends. It returns the record's number.
func (j *journal) append(ops []op) (uint64, error) {
	rec, err := encodeRecord(ops)
	if err != nil {
		return 0, fmt.Errorf("encode journal record: %w", err)
	}
	if end := j.size + int64(len(rec)); end > j.alloc {
		if err := j.grow(end); err != nil {
			return 0, err
		}
	}
	if _, err := j.f.WriteAt(rec, j.size); err != nil {
		// A partial write is a torn tail: the next append overwrites it.
		return 0, fmt.Errorf("append to journal: %w", err)
	}
	j.size += int64(len(rec))
	j.mu.Lock()
	for _, o := range ops {
		m := j.overlay[o.Bucket]
		if m == nil {
			m = map[string][]byte{}
			j.overlay[o.Bucket] = m
		}
		if o.Del {
			m[o.Key] = nil
		} else {
			m[o.Key] = o.Value
		}
	}
	j.mu.Unlock()
	j.syncMu.Lock()
	j.written++
	seq := j.written
	j.syncMu.Unlock()
	return seq, nil
}

// grow writes zeros from alloc up to at least end, in preallocBytes steps,
// a page per write. A buffered write puts what it writes in page-cache
// folios as large as the write allows, and ext4 walks every block of a
// folio at each later write into it (ext4_block_write_begin): appends of
// 2.3 KB records into zeros written 1 MiB at a time took 6.2 µs at p50,
// their fdatasync 167-201 µs, against 3.2 µs and 146-149 µs into zeros
// written a page at a time (three alternating runs on this VM's ext4).
func (j *journal) grow(end int64) error {
	next := j.alloc
	for next < end {
		next += preallocBytes
	}
	zeros := make([]byte, os.Getpagesize())
	for off := j.alloc; off < next; off += int64(len(zeros)) {
		if _, err := j.f.WriteAt(zeros[:min(int64(len(zeros)), next-off)], off); err != nil {
			return fmt.Errorf("grow journal: %w", err)
		}
	}
	j.alloc = next
	return nil
}

// wait returns once record seq is on disk. One fdatasync covers every
// record written before it started; waiters that arrive while it runs
// wait for it and, if their record came later, start the next.
func (j *journal) wait(seq uint64) error {
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	for {
		if j.synced >= seq {
			return nil
		}
		if j.syncErr != nil {
			return j.syncErr
		}
		if !j.syncing {
			break
		}
		j.cond.Wait()
	}
	j.syncing = true
	target := j.written
	j.syncMu.Unlock()
	err := unix.Fdatasync(int(j.f.Fd()))
	j.syncMu.Lock()
	j.syncing = false
	if err != nil {
		// A failed fdatasync may have dropped dirty pages: nothing written
		// so far can be trusted to reach the disk any more.
		j.syncErr = fmt.Errorf("sync journal: %w", err)
	} else {
		j.synced = max(j.synced, target)
	}
	j.cond.Broadcast()
	if j.syncErr != nil {
		return j.syncErr
	}
	return nil
}

// durable is the Durable of record seq.
type durable struct {
	j   *journal
	seq uint64
}

func (d durable) Wait() error { return d.j.wait(d.seq) }

// snapshot returns the overlay as ops, for a checkpoint.
func (j *journal) snapshot() []op {
	j.mu.RLock()
	defer j.mu.RUnlock()
	return opsOf(j.overlay)
}

// opsOf turns an overlay into ops.
func opsOf(overlay map[string]map[string][]byte) []op {
	var ops []op
	for b, m := range overlay {
		for k, v := range m {
			if v == nil {
				ops = append(ops, op{Bucket: b, Key: k, Del: true})
			} else {
				ops = append(ops, op{Bucket: b, Key: k, Value: v})
			}
		}
	}
	return ops
}

// reset empties the journal and the overlay after a checkpoint made bbolt
// hold all of it. Records written before count as synced: they are in bbolt.
func (j *journal) reset() error {
	j.syncMu.Lock()
	for j.syncing {
		j.cond.Wait()
	}
	j.syncMu.Unlock()
	if err := j.f.Truncate(0); err != nil {
		return fmt.Errorf("truncate journal: %w", err)
	}
	if err := unix.Fdatasync(int(j.f.Fd())); err != nil {
		return fmt.Errorf("sync journal: %w", err)
	}
	j.size, j.alloc = 0, 0
	j.mu.Lock()
	j.overlay = map[string]map[string][]byte{}
	j.mu.Unlock()
	j.syncMu.Lock()
	j.synced = j.written
	j.cond.Broadcast()
	j.syncMu.Unlock()
	return nil
}

// oldPath is where rotate moves the records a background checkpoint
// folds; replay reads it before the journal.
func (j *journal) oldPath() string { return j.path + ".old" }

// rotate starts a background checkpoint's work: the caller holds the
// store's write lock, so no append runs. The records so far are made
// durable, the file is renamed to oldPath and a new, empty journal takes
// its place (the directory synced, so that a power loss keeps both names
// as they are now), and the overlay is frozen: rotate returns its ops,
// for the caller to fold into bbolt, and thaw lets them go. Appends go on
// into the new file meanwhile.
func (j *journal) rotate() ([]op, error) {
	j.syncMu.Lock()
	for j.syncing {
		j.cond.Wait()
	}
	defer j.syncMu.Unlock()
	if j.syncErr != nil {
		return nil, j.syncErr
	}
	if j.synced < j.written {
		if err := unix.Fdatasync(int(j.f.Fd())); err != nil {
			j.syncErr = fmt.Errorf("sync journal: %w", err)
			return nil, j.syncErr
		}
		j.synced = j.written
		j.cond.Broadcast()
	}
	if err := j.rename(j.path, j.oldPath()); err != nil {
		return nil, fmt.Errorf("rotate journal: %w", err)
	}
	f, err := os.OpenFile(j.path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err == nil {
		err = syncDir(filepath.Dir(j.path))
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		// The old records are still all there is: put them back. If even
		// that fails, the live records are under the old name, where the
		// next rotate would rename another file over them: refuse every
		// write from now on, as after a failed fdatasync (review of
		// session 17's checkpoint retry).
		if rerr := j.rename(j.oldPath(), j.path); rerr != nil {
			j.syncErr = fmt.Errorf("rotate journal: %w; and putting it back: %w", err, rerr)
			return nil, j.syncErr
		}
		return nil, fmt.Errorf("rotate journal: %w", err)
	}
	j.f.Close()
	j.f, j.size, j.alloc = f, 0, 0
	j.mu.Lock()
	j.frozen, j.overlay = j.overlay, map[string]map[string][]byte{}
	ops := opsOf(j.frozen)
	j.mu.Unlock()
	return ops, nil
}

// thaw ends a background checkpoint once bbolt holds the frozen records:
// reads no longer need them, and neither does replay.
func (j *journal) thaw() error {
	j.mu.Lock()
	j.frozen = nil
	j.mu.Unlock()
	if err := os.Remove(j.oldPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove rotated journal: %w", err)
	}
	// A power loss must not bring it back: replay would apply its
	// records over bbolt's newer values once the journal no longer
	// holds those (a fold at Close empties it).
	return syncDir(filepath.Dir(j.oldPath()))
}

// syncDir makes the names in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// failed returns the error of a failed fdatasync, if one failed.
func (j *journal) failed() error {
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	return j.syncErr
}

// close stops the syncer and closes the file once no fdatasync is running
// on it; later waits for records not yet on disk fail with ErrClosed.
// errJournalClosed answers waits after close; it is never returned for a
// record that is on disk (wait checks synced first).
var errJournalClosed = fmt.Errorf("journal closed: %w", ErrClosed)

func (j *journal) close() error {
	close(j.kick)
	<-j.syncerDone
	j.syncMu.Lock()
	for j.syncing {
		j.cond.Wait()
	}
	if j.syncErr == nil {
		j.syncErr = errJournalClosed // waits for records on disk still return nil first
	}
	j.syncMu.Unlock()
	return j.f.Close()
}
