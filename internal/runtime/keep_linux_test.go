package runtime

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// keepBatches: sorted keys, one descriptor count a batch, at most
// keepBatch descriptors and a reply's room of keys (escapes counted);
// keys no message carries are refused.
func TestKeepBatches(t *testing.T) {
	counts := map[string]int{}
	for i := range 150 {
		counts[fmt.Sprintf("%064x", i)] = 2 // sandbox IDs: 60 a reply
	}
	counts["odd"] = 3
	// 2,400 bytes each in JSON (6 a '<'): two do not fit in one reply.
	counts["esc1"+strings.Repeat("<", 400)] = 1
	counts["esc2"+strings.Repeat("<", 400)] = 1
	counts["too many"] = keepBatch + 1
	counts["too long"+strings.Repeat("x", maxReply)] = 1
	batches, refused := keepBatches(counts)

	var seen []string
	for _, keys := range batches {
		n, fds, size := counts[keys[0]], 0, 0
		for _, key := range keys {
			if counts[key] != n {
				t.Errorf("batch %q mixes %d and %d descriptors a key", keys, n, counts[key])
			}
			q, _ := json.Marshal(key)
			fds, size = fds+counts[key], size+len(q)+1
		}
		if fds > keepBatch || size > maxReply-replyRoom {
			t.Errorf("a batch of %d keys: %d descriptors, %d bytes of keys; want at most %d and %d", len(keys), fds, size, keepBatch, maxReply-replyRoom)
		}
		seen = append(seen, keys...)
	}
	if !slices.IsSorted(seen) {
		t.Error("keys not in order across the batches")
	}
	slices.Sort(refused)
	if want := []string{"too long" + strings.Repeat("x", maxReply), "too many"}; !slices.Equal(refused, want) {
		t.Errorf("refused %d keys, want the two no message carries", len(refused))
	}
	if len(seen)+len(refused) != len(counts) {
		t.Errorf("%d keys batched and %d refused of %d", len(seen), len(refused), len(counts))
	}
	if len(batches) != 6 {
		t.Errorf("%d batches, want 6 (150 IDs at 60 a reply, the odd one, each escaped one)", len(batches))
	}
}
