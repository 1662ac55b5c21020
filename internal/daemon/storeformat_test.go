package daemon

import (
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/store"
)

// TestStoreFormat: a store without the mark (older berth) is marked as
// this format; one of this format passes; one written by a newer berth is
// refused with words that say what to do.
func TestStoreFormat(t *testing.T) {
	st := store.NewMemory()
	if err := checkStoreFormat(st, "x.db"); err != nil {
		t.Fatalf("unmarked store: %v", err)
	}
	var got int
	if err := st.View(func(tx store.Tx) error { return tx.Get(store.BucketMeta, storeFormatKey, &got) }); err != nil || got != storeFormat {
		t.Fatalf("mark after the check: %d (%v), want %d", got, err, storeFormat)
	}
	if err := checkStoreFormat(st, "x.db"); err != nil {
		t.Errorf("store of this format: %v", err)
	}
	if err := st.Update(func(tx store.Tx) error { return tx.Put(store.BucketMeta, storeFormatKey, storeFormat+1) }); err != nil {
		t.Fatal(err)
	}
	err := checkStoreFormat(st, "x.db")
	if err == nil || !strings.Contains(err.Error(), "newer berth") || !strings.Contains(err.Error(), "x.db") {
		t.Errorf("newer store: %v, want a refusal naming the file", err)
	}
}
