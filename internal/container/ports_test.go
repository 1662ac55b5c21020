package container

import (
	"testing"

	"github.com/berth-net/berth/internal/errdefs"
)

func TestParsePortKey(t *testing.T) {
	for _, c := range []struct {
		in    string
		port  uint16
		proto string
		bad   bool
	}{
		{"80/tcp", 80, "tcp", false}, {"53/udp", 53, "udp", false}, {"8080", 8080, "tcp", false},
		{"0/tcp", 0, "", true}, {"65536/tcp", 0, "", true}, {"x/tcp", 0, "", true},
		{"80/sctp", 0, "", true}, {"80/TCP", 0, "", true}, {"", 0, "", true},
	} {
		port, proto, err := ParsePortKey(c.in)
		if c.bad {
			if !errdefs.Is(err, errdefs.KindInvalid) {
				t.Errorf("ParsePortKey(%q) = %d %q %v, want an Invalid error", c.in, port, proto, err)
			}
			continue
		}
		if err != nil || port != c.port || proto != c.proto {
			t.Errorf("ParsePortKey(%q) = %d %q %v, want %d %q", c.in, port, proto, err, c.port, c.proto)
		}
	}
}

func TestParseHostPorts(t *testing.T) {
	for _, c := range []struct {
		in         string
		start, end uint16
		bad        bool
	}{
		{"", 0, 0, false}, {"0", 0, 0, false}, {"8080", 8080, 8080, false}, {"8000-9000", 8000, 9000, false},
		{"65535", 65535, 65535, false},
		{"9000-8000", 0, 0, true}, {"0-10", 0, 0, true}, {"65536", 0, 0, true}, {"80-", 0, 0, true},
		{"-80", 0, 0, true}, {"http", 0, 0, true},
	} {
		start, end, err := ParseHostPorts(c.in)
		if c.bad {
			if !errdefs.Is(err, errdefs.KindInvalid) {
				t.Errorf("ParseHostPorts(%q) = %d-%d %v, want an Invalid error", c.in, start, end, err)
			}
			continue
		}
		if err != nil || start != c.start || end != c.end {
			t.Errorf("ParseHostPorts(%q) = %d-%d %v, want %d-%d", c.in, start, end, err, c.start, c.end)
		}
	}
}
