package daemon

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

// inotifyEvent is one event as the kernel writes it: the header, then the
// name NUL-padded to pad bytes.
func inotifyEvent(wd int32, mask uint32, name string, pad int) []byte {
	b := make([]byte, unix.SizeofInotifyEvent+pad)
	binary.NativeEndian.PutUint32(b[0:], uint32(wd))
	binary.NativeEndian.PutUint32(b[4:], mask)
	binary.NativeEndian.PutUint32(b[12:], uint32(pad))
	copy(b[unix.SizeofInotifyEvent:], name)
	return b
}

// TestResolvEventsMatch: an event names a watched file only in its own
// directory's watch; other files, a torn buffer and other directories do
// not count; a queue overflow does (a change may be among what was lost).
func TestResolvEventsMatch(t *testing.T) {
	names := map[int32][]string{1: {"resolv.conf"}, 2: {"stub-resolv.conf", "resolv.conf"}}
	for _, tc := range []struct {
		name string
		buf  []byte
		want bool
	}{
		{"the file, replaced", inotifyEvent(1, unix.IN_MOVED_TO, "resolv.conf", 16), true},
		{"another file first", append(inotifyEvent(1, unix.IN_CLOSE_WRITE, "hosts", 16), inotifyEvent(2, unix.IN_CLOSE_WRITE, "stub-resolv.conf", 32)...), true},
		{"another file", inotifyEvent(1, unix.IN_CLOSE_WRITE, "resolv.conf.tmp", 16), false},
		{"another directory's watch", inotifyEvent(3, unix.IN_CLOSE_WRITE, "resolv.conf", 16), false},
		{"overflow", inotifyEvent(-1, unix.IN_Q_OVERFLOW, "", 0), true},
		{"torn", inotifyEvent(1, unix.IN_CLOSE_WRITE, "resolv.conf", 16)[:20], false},
	} {
		if got := resolvEventsMatch(tc.buf, names); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
