package capbuf

import "testing"

// TestBuffer: the first Max bytes are kept across writes, every write
// reports all its bytes taken, and "..." marks what was cut.
func TestBuffer(t *testing.T) {
	b := &Buffer{Max: 5}
	for _, w := range []string{"abc", "defg", "hij"} {
		if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", w, n, err)
		}
	}
	if got := b.String(); got != "abcde..." {
		t.Errorf("String() = %q, want %q", got, "abcde...")
	}
	small := &Buffer{Max: 10}
	small.Write([]byte("ok"))
	if got := small.String(); got != "ok" {
		t.Errorf("String() of what fitted = %q, want %q", got, "ok")
	}
}
