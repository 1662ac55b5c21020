package store

import (
	"errors"
	"fmt"
)

// Errors shared by both implementations, so callers and tests see the same
// answers from bbolt and from memory.
var (
	// ErrReadOnly: Put or Delete inside View.
	ErrReadOnly = errors.New("write in a read-only transaction")
	// ErrTxDone: a Tx used after the function it was given to returned.
	ErrTxDone = errors.New("transaction is over")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store is closed")
	// ErrLocked: another process holds the store file open.
	ErrLocked = errors.New("store file is locked")
)

// checkNames refuses what bbolt refuses, in both implementations.
func checkNames(bucket, key string) error {
	if bucket == "" {
		return errors.New("bucket name is empty")
	}
	if key == "" {
		return fmt.Errorf("empty key in bucket %q", bucket)
	}
	return nil
}

func notFound(bucket, key string) error {
	return fmt.Errorf("record %q in bucket %q: %w", key, bucket, ErrNotFound)
}
