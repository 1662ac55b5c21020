// Package capbuf holds what the daemon keeps of a child process's output
// that it shows to a user (a health check's output, a decompressor's
// complaint): the first bytes only, so that a child that writes without
// end cannot grow the daemon.
package capbuf

import (
	"bytes"
	"sync"
)

// Buffer keeps the first Max bytes written to it, and says "..." after
// them when more came (moby's limitedBuffer). Safe for concurrent use.
type Buffer struct {
	Max int

	mu        sync.Mutex
	buf       bytes.Buffer
	truncated bool
}

// Write keeps what fits and reports all of p written, so that the child
// is never stopped by a short write.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	keep := min(b.Max-b.buf.Len(), len(p))
	if keep > 0 {
		b.buf.Write(p[:keep])
	}
	if keep < len(p) {
		b.truncated = true
	}
	return len(p), nil
}

// String is what was kept, with "..." if more came.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.truncated {
		return b.buf.String() + "..."
	}
	return b.buf.String()
}
