package store

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
)

// Memory is a Store in memory, with Bolt's semantics, for unit tests of the
// code above it: records are kept as JSON (so what round-trips is the same),
// an Update's writes are buffered and applied only when fn returns nil, one
// Update runs at a time, and Views see committed data only. Safe for
// concurrent use.
type Memory struct {
	writeMu sync.Mutex   // one Update at a time, as in bbolt
	mu      sync.RWMutex // guards data and closed; held for reading by View
	data    map[string]map[string][]byte
	closed  bool
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{data: map[string]map[string][]byte{}}
}

// Update runs fn with a transaction whose writes are applied only if fn
// returns nil; an error (returned as is) or a panic leaves nothing behind.
func (m *Memory) Update(fn func(Tx) error) error {
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	if m.isClosed() {
		return ErrClosed
	}
	// Holding writeMu, nobody else changes data, so the transaction reads
	// it without mu; commit takes mu to keep Views consistent.
	t := &memTx{m: m, writable: true, pending: map[string]map[string]*[]byte{}}
	if err := t.run(fn); err != nil {
		return err
	}
	m.commit(t.pending)
	return nil
}

// Record is Update: memory has no disk to wait for.
func (m *Memory) Record(fn func(Tx) error) (Durable, error) {
	if err := m.Update(fn); err != nil {
		return nil, err
	}
	return durableNow{}, nil
}

// Note is Update.
func (m *Memory) Note(fn func(Tx) error) error { return m.Update(fn) }

// View runs fn with a read-only transaction. Do not call Update inside fn:
// the commit would wait for this View (bbolt has the same rule).
func (m *Memory) View(fn func(Tx) error) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return ErrClosed
	}
	return (&memTx{m: m}).run(fn)
}

// Close drops the data; later transactions fail with ErrClosed.
func (m *Memory) Close() error {
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.data = nil
	return nil
}

func (m *Memory) isClosed() bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.closed
}

// commit applies buffered writes; a nil value is a delete.
func (m *Memory) commit(pending map[string]map[string]*[]byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for bucket, writes := range pending {
		b := m.data[bucket]
		if b == nil {
			b = map[string][]byte{}
			m.data[bucket] = b
		}
		for key, raw := range writes {
			if raw == nil {
				delete(b, key)
			} else {
				b[key] = *raw
			}
		}
	}
}

type memTx struct {
	m        *Memory
	writable bool
	done     bool
	pending  map[string]map[string]*[]byte // bucket → key → JSON, nil for deleted
}

// run calls fn and ends the transaction however fn ends, panics included.
func (t *memTx) run(fn func(Tx) error) error {
	defer func() { t.done = true }()
	return fn(t)
}

func (t *memTx) check(bucket, key string, write bool) error {
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

// lookup returns the record as this transaction sees it.
func (t *memTx) lookup(bucket, key string) ([]byte, bool) {
	if raw, ok := t.pending[bucket][key]; ok {
		if raw == nil {
			return nil, false
		}
		return *raw, true
	}
	raw, ok := t.m.data[bucket][key]
	return raw, ok
}

func (t *memTx) Get(bucket, key string, v any) error {
	if err := t.check(bucket, key, false); err != nil {
		return err
	}
	raw, ok := t.lookup(bucket, key)
	if !ok {
		return notFound(bucket, key)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("decode record %q in bucket %q: %w", key, bucket, err)
	}
	return nil
}

func (t *memTx) Put(bucket, key string, v any) error {
	if err := t.check(bucket, key, true); err != nil {
		return err
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode record %q in bucket %q: %w", key, bucket, err)
	}
	t.stage(bucket, key, &raw)
	return nil
}

func (t *memTx) Delete(bucket, key string) error {
	if err := t.check(bucket, key, true); err != nil {
		return err
	}
	t.stage(bucket, key, nil)
	return nil
}

func (t *memTx) stage(bucket, key string, raw *[]byte) {
	if t.pending[bucket] == nil {
		t.pending[bucket] = map[string]*[]byte{}
	}
	t.pending[bucket][key] = raw
}

// ForEach visits committed and pending records in byte order of their keys,
// as bbolt does.
func (t *memTx) ForEach(bucket string, fn func(key string, raw []byte) error) error {
	if err := t.check(bucket, "-", false); err != nil {
		return err
	}
	keys := slices.Collect(maps.Keys(t.m.data[bucket]))
	keys = slices.AppendSeq(keys, maps.Keys(t.pending[bucket]))
	slices.Sort(keys)
	keys = slices.Compact(keys)
	for _, key := range keys {
		raw, ok := t.lookup(bucket, key)
		if !ok {
			continue
		}
		if err := fn(key, slices.Clone(raw)); err != nil {
			return err
		}
	}
	return nil
}
