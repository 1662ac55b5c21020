package daemon

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// TestListening reads /proc/net/tcp and tcp6 as the kernel writes them:
// addresses as 32-bit words in host byte order, the state in hex (0A is
// LISTEN; a port held by a bound socket that does not listen is 07).
func TestListening(t *testing.T) {
	dir := t.TempDir()
	tcp := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 00000000:1F98 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
   2: 026433C6:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 100 0 0 10 0
`
	tcp6 := `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F99 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1 0000000000000000 100 0 0 10 0
`
	for name, content := range map[string]string{"tcp": tcp, "tcp6": tcp6} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		addr string
		port uint16
		want bool
	}{
		{"127.0.0.1", 8080, true},
		{"198.51.100.2", 8080, false}, // bound to 127.0.0.1 only
		{"198.51.100.2", 8088, false}, // bound, not listening: a held port
		{"198.51.100.2", 22, true},
		{"198.51.100.3", 22, false},
		{"198.51.100.2", 8089, true}, // [::] takes IPv4 too
		{"2001:db8::2", 8089, true},
		{"2001:db8::2", 8080, false},
	} {
		got, err := listening(dir, netip.MustParseAddr(tc.addr), tc.port, false)
		if err != nil || got != tc.want {
			t.Errorf("%s:%d: %t %v, want %t", tc.addr, tc.port, got, err, tc.want)
		}
	}
	// A [::] socket known to be IPv6-only (the daemon's proxy) takes no
	// IPv4 connection.
	if got, _ := listening(dir, netip.MustParseAddr("198.51.100.2"), 8089, true); got {
		t.Error("an IPv6-only [::] socket taken for an IPv4 listener")
	}
	if got, _ := listening(dir, netip.MustParseAddr("2001:db8::2"), 8089, true); !got {
		t.Error("an IPv6-only [::] socket not taken for an IPv6 listener")
	}
}
