package main

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/berth-net/berth/bench/internal/stats"
	"github.com/berth-net/berth/internal/store"
)

// storeCommits times n one-record store updates (a journal append and its
// fdatasync) in a scratch store beside the daemon's data-root (same
// filesystem): the durable write a connect or disconnect waits for, once.
func storeCommits(dir string, n int) (stats.Samples, error) {
	st, err := store.OpenBolt(filepath.Join(dir, "commit-probe.db"))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	rec := map[string]string{"state": "ready", "address": "10.88.0.2/16"}
	var s stats.Samples
	for i := range n {
		t0 := time.Now()
		err := st.Update(func(tx store.Tx) error { return tx.Put(store.BucketEndpoints, fmt.Sprint(i), rec) })
		if err != nil {
			return nil, err
		}
		s = append(s, time.Since(t0))
	}
	return s, nil
}
