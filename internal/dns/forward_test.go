package dns

import "testing"

// The bound across resolvers is maxForwardsAll, or a quarter of a lower
// open-file limit, never below one resolver's own bound.
func TestForwardSlots(t *testing.T) {
	for _, tc := range []struct {
		nofile uint64
		want   int
	}{
		{0, maxForwardsAll},
		{1 << 20, maxForwardsAll},
		{4 * maxForwardsAll, maxForwardsAll},
		{65536, 16384},
		{1024, maxForwards},
		{8192, 2048},
	} {
		if got := forwardSlots(tc.nofile); got != tc.want {
			t.Errorf("forwardSlots(%d) = %d, want %d", tc.nofile, got, tc.want)
		}
	}
}
