package runtime

import (
	"encoding/json"
	"maps"
	"slices"
	"time"
)

// keepFor is how long the reaper keeps what a daemon left it ("keep")
// for the next one: a restart takes well under a second with hundreds of
// containers; a daemon stopped for longer has its containers' queries
// refused again, as they were before berth kept the sockets.
const keepFor = 10 * time.Second

// keepBatch is how many descriptors one "keep" or "kept" message
// carries at most (the kernel's limit, SCM_MAX_FD, is 253); replyRoom
// is what a "kept" answer leaves of maxReply for all but its keys.
const (
	keepBatch = 128
	replyRoom = 64
)

// keepBatches groups keys, by how many descriptors each has (counts), into
// the messages of a "keep" or a "kept" answer: sorted, each batch's keys
// with as many descriptors each, keepBatch descriptors at most, and keys
// that fit in a reply the daemon reads whole (maxReply, escapes counted).
// refused are the keys no message can carry.
func keepBatches(counts map[string]int) (batches [][]string, refused []string) {
	var cur []string
	each, fds, size := 0, 0, 0
	for _, key := range slices.Sorted(maps.Keys(counts)) {
		n := counts[key]
		quoted, _ := json.Marshal(key)
		ksize := len(quoted) + 1 // and a comma
		if n <= 0 || n > keepBatch || ksize > maxReply-replyRoom {
			refused = append(refused, key)
			continue
		}
		if len(cur) > 0 && (n != each || fds+n > keepBatch || size+ksize > maxReply-replyRoom) {
			batches, cur, fds, size = append(batches, cur), nil, 0, 0
		}
		cur, each, fds, size = append(cur, key), n, fds+n, size+ksize
	}
	if len(cur) > 0 {
		batches = append(batches, cur)
	}
	return batches, refused
}
