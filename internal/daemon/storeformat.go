package daemon

import (
	"errors"
	"fmt"

	"github.com/berth-net/berth/internal/store"
)

// storeFormat is the version of the records this daemon writes. A store
// without the mark is format 1 (everything before the mark existed). 2:
// bridge networks may have no IPv4 (IPv6-only networks), ports may have
// no host side (gateway mode routed), networks carry gateway modes; a
// daemon of format 1 would crash on the first and drop every rule over
// the second.
//
// Raise it with any record an older daemon would misread, and teach
// checkStoreFormat to read the older ones if they need it.
const storeFormat = 2

// storeFormatKey is the mark's key in store.BucketMeta.
const storeFormatKey = "format"

// checkStoreFormat refuses a store written by a newer berth, before
// anything reads its records, and marks an older one as this format,
// which reads the older records as they are.
func checkStoreFormat(st store.Store, path string) error {
	var have int
	err := st.View(func(tx store.Tx) error { return tx.Get(store.BucketMeta, storeFormatKey, &have) })
	switch {
	case errors.Is(err, store.ErrNotFound):
		have = 1
	case err != nil:
		return fmt.Errorf("read the store's format mark: %w", err)
	}
	if have > storeFormat {
		return fmt.Errorf("the data in %s was written by a newer berth (store format %d; this berth reads up to %d): run that berth, or give this one another --data-root", path, have, storeFormat)
	}
	if have == storeFormat {
		return nil
	}
	return st.Update(func(tx store.Tx) error { return tx.Put(store.BucketMeta, storeFormatKey, storeFormat) })
}
