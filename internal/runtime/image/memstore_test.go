package image

import (
	"encoding/json"
	"sort"
	"sync"

	"github.com/berth-net/berth/internal/store"
)

// memStore is a small in-memory store.Store for these tests: JSON records
// in maps, copied on commit so a failed Update changes nothing.
type memStore struct {
	mu   sync.Mutex
	data map[string]map[string][]byte
}

func newMemStore() *memStore { return &memStore{data: map[string]map[string][]byte{}} }

type memTx struct{ data map[string]map[string][]byte }

func (s *memStore) Update(fn func(store.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx := memTx{data: clone(s.data)}
	if err := fn(tx); err != nil {
		return err
	}
	s.data = tx.data
	return nil
}

func (s *memStore) View(fn func(store.Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fn(memTx{data: clone(s.data)})
}

func (s *memStore) Close() error { return nil }

func clone(d map[string]map[string][]byte) map[string]map[string][]byte {
	out := map[string]map[string][]byte{}
	for b, m := range d {
		out[b] = map[string][]byte{}
		for k, v := range m {
			out[b][k] = v
		}
	}
	return out
}

func (tx memTx) Get(bucket, key string, v any) error {
	raw, ok := tx.data[bucket][key]
	if !ok {
		return store.ErrNotFound
	}
	return json.Unmarshal(raw, v)
}

func (tx memTx) Put(bucket, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if tx.data[bucket] == nil {
		tx.data[bucket] = map[string][]byte{}
	}
	tx.data[bucket][key] = raw
	return nil
}

func (tx memTx) Delete(bucket, key string) error {
	delete(tx.data[bucket], key)
	return nil
}

func (tx memTx) ForEach(bucket string, fn func(key string, raw []byte) error) error {
	var keys []string
	for k := range tx.data[bucket] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := fn(k, tx.data[bucket][k]); err != nil {
			return err
		}
	}
	return nil
}
