package ipam

import "math/bits"

// chunkBits addresses share one chunk of the bitmap: 4096 addresses, 512 bytes.
const (
	chunkShift = 12
	chunkBits  = 1 << chunkShift
	chunkWords = chunkBits / 64
)

type chunk struct {
	words [chunkWords]uint64
	set   int // bits set in words
}

// bitmap is a sparse bitmap over 64-bit offsets into a subnet. Chunks are
// made on first use and dropped when empty, so a /8 (2^24 addresses) or an
// IPv6 /64 (2^64) costs memory in proportion to the addresses in use, not to
// its size.
type bitmap struct {
	chunks map[uint64]*chunk
}

func newBitmap() bitmap { return bitmap{chunks: map[uint64]*chunk{}} }

func (b *bitmap) isSet(off uint64) bool {
	c := b.chunks[off>>chunkShift]
	if c == nil {
		return false
	}
	i := off & (chunkBits - 1)
	return c.words[i/64]&(1<<(i%64)) != 0
}

// set sets the bit of off and reports whether it was clear.
func (b *bitmap) set(off uint64) bool {
	c := b.chunks[off>>chunkShift]
	if c == nil {
		c = &chunk{}
		b.chunks[off>>chunkShift] = c
	}
	i := off & (chunkBits - 1)
	mask := uint64(1) << (i % 64)
	if c.words[i/64]&mask != 0 {
		return false
	}
	c.words[i/64] |= mask
	c.set++
	return true
}

// clear clears the bit of off and reports whether it was set.
func (b *bitmap) clear(off uint64) bool {
	c := b.chunks[off>>chunkShift]
	if c == nil {
		return false
	}
	i := off & (chunkBits - 1)
	mask := uint64(1) << (i % 64)
	if c.words[i/64]&mask == 0 {
		return false
	}
	c.words[i/64] &^= mask
	c.set--
	if c.set == 0 {
		delete(b.chunks, off>>chunkShift)
	}
	return true
}

// firstClear returns the lowest clear offset in [lo, hi]. It visits one
// chunk per full chunk it skips, so its cost follows the addresses in use,
// not the width of the interval. Chunk numbers stay below 2^52, so the loop
// cannot wrap even when hi is the largest offset.
func (b *bitmap) firstClear(lo, hi uint64) (uint64, bool) {
	for ci := lo >> chunkShift; ci <= hi>>chunkShift; ci++ {
		base := ci << chunkShift
		from := max(lo, base) - base
		to := min(hi, base+(chunkBits-1)) - base
		c := b.chunks[ci]
		if c == nil {
			return base + from, true
		}
		if c.set == chunkBits {
			continue
		}
		if i, ok := c.firstClear(from, to); ok {
			return base + i, true
		}
	}
	return 0, false
}

// firstClear returns the lowest clear bit in [from, to] of one chunk.
func (c *chunk) firstClear(from, to uint64) (uint64, bool) {
	for w := from / 64; w <= to/64; w++ {
		free := ^c.words[w]
		if w == from/64 {
			free &= ^uint64(0) << (from % 64)
		}
		if w == to/64 && to%64 != 63 {
			free &= (uint64(1) << (to%64 + 1)) - 1
		}
		if free != 0 {
			return w*64 + uint64(bits.TrailingZeros64(free)), true
		}
	}
	return 0, false
}
