package portalloc

import (
	"net/netip"
	"testing"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/network"
	"golang.org/x/sys/unix"
)

var ctrAddr = netip.MustParseAddr("172.17.0.3")

// to is req with the container's side that Docker's words name.
func to(r network.HostPortRequest, port uint16) network.HostPortRequest {
	r.Container = netip.AddrPortFrom(ctrAddr, port)
	return r
}

func TestMappingString(t *testing.T) {
	for _, tc := range []struct {
		r    network.HostPortRequest
		want string
	}{
		{to(req("tcp", anyIP, 8095, 8095), 80), "0.0.0.0:8095:172.17.0.3:80/tcp"},
		{to(req("udp", localIP, 8000, 8001), 53), "127.0.0.1:8000-8001:172.17.0.3:53/udp"},
		{to(req("tcp", netip.Addr{}, 0, 0), 443), "0.0.0.0::172.17.0.3:443/tcp"},                 // moby's PortBinding.String: the host port's colon stays
		{req("tcp", anyIP, 8080, 8080), "0.0.0.0:8080:0/tcp"},                                    // a restart's: no container side
		{to(req("tcp", netip.IPv6Unspecified(), 8080, 8080), 80), "[::]:8080:172.17.0.3:80/tcp"}, // moby brackets IPv6 host addresses
		{network.HostPortRequest{Proto: "tcp", HostIP: netip.IPv6Unspecified(), Start: 8080, End: 8080, Container: netip.MustParseAddrPort("[fd00::2]:80")}, "[::]:8080:[fd00::2]:80/tcp"},
	} {
		if got := mappingString(tc.r); got != tc.want {
			t.Errorf("mappingString(%+v) = %q, want %q", tc.r, got, tc.want)
		}
	}
}

// TestWordFailedHold: Docker 28's words, and berth's kinds, for each way a
// Hold fails, told apart by what berth itself publishes.
func TestWordFailedHold(t *testing.T) {
	a := New("", nil)
	for _, hp := range []network.HostPort{
		{Proto: "tcp", HostIP: anyIP, Port: 8080},
		{Proto: "tcp", HostIP: localIP, Port: 8081},
		{Proto: "tcp", HostIP: anyIP, Port: 8000},
		{Proto: "tcp", HostIP: anyIP, Port: 8001},
	} {
		a.held[hp] = -1
	}
	tenNine := netip.MustParseAddr("10.9.9.9")
	for _, tc := range []struct {
		name string
		reqs []network.HostPortRequest
		f    bindFailure
		kind errdefs.Kind
		want string
	}{
		{"published by a container", []network.HostPortRequest{to(req("tcp", anyIP, 8080, 8080), 80)},
			bindFailure{port: 8080, err: unix.EADDRINUSE}, errdefs.KindConflict,
			"Bind for 0.0.0.0:8080 failed: port is already allocated"},
		// moby's allocator keeps ports by address alone: one address
		// under every address (or the reverse) is the bind's failure.
		{"one address under every address", []network.HostPortRequest{to(req("tcp", localIP, 8080, 8080), 80)},
			bindFailure{port: 8080, err: unix.EADDRINUSE}, errdefs.KindConflict,
			"failed to bind host port for 127.0.0.1:8080:172.17.0.3:80/tcp: address already in use"},
		{"published on the same address", []network.HostPortRequest{to(req("tcp", localIP, 8081, 8081), 80)},
			bindFailure{port: 8081, err: unix.EADDRINUSE}, errdefs.KindConflict,
			"Bind for 127.0.0.1:8081 failed: port is already allocated"},
		{"every address over one address", []network.HostPortRequest{to(req("tcp", anyIP, 8081, 8081), 80)},
			bindFailure{port: 8081, err: unix.EADDRINUSE, inUse: true}, errdefs.KindConflict,
			"failed to bind host port for 0.0.0.0:8081:172.17.0.3:80/tcp: address already in use"},
		{"twice in one request", []network.HostPortRequest{to(req("tcp", anyIP, 9000, 9000), 80), to(req("tcp", anyIP, 9000, 9000), 81)},
			bindFailure{i: 1, port: 9000, err: unix.EADDRINUSE}, errdefs.KindConflict,
			"Bind for 0.0.0.0:9000 failed: port is already allocated"},
		{"host process", []network.HostPortRequest{to(req("tcp", anyIP, 8095, 8095), 80)},
			bindFailure{port: 8095, err: unix.EADDRINUSE}, errdefs.KindConflict,
			"failed to bind host port for 0.0.0.0:8095:172.17.0.3:80/tcp: address already in use"},
		{"not a host address", []network.HostPortRequest{to(req("tcp", tenNine, 8096, 8096), 80)},
			bindFailure{port: 8096, err: unix.EADDRNOTAVAIL}, errdefs.KindInvalid,
			"failed to bind host port for 10.9.9.9:8096:172.17.0.3:80/tcp: cannot assign requested address"},
		{"range published", []network.HostPortRequest{to(req("tcp", anyIP, 8000, 8001), 80)},
			bindFailure{port: 8001, err: unix.EADDRINUSE, inUse: true}, errdefs.KindConflict,
			"all ports are allocated"},
		{"range partly a host process's", []network.HostPortRequest{to(req("tcp", anyIP, 7999, 8001), 80)},
			bindFailure{port: 8001, err: unix.EADDRINUSE, inUse: true}, errdefs.KindConflict,
			"failed to bind host port 7999 for 0.0.0.0:7999-8001:172.17.0.3:80/tcp: address already in use"},
		{"published, on another address", []network.HostPortRequest{to(req("tcp", tenNine, 8080, 8080), 80)},
			bindFailure{port: 8080, err: unix.EADDRNOTAVAIL}, errdefs.KindInvalid,
			"failed to bind host port for 10.9.9.9:8080:172.17.0.3:80/tcp: cannot assign requested address"},
		{"range partly published, on another address", []network.HostPortRequest{to(req("tcp", tenNine, 8001, 8002), 80)},
			bindFailure{port: 8001, err: unix.EADDRNOTAVAIL}, errdefs.KindInvalid,
			"failed to bind host port 8001 for 10.9.9.9:8001-8002:172.17.0.3:80/tcp: cannot assign requested address"},
		{"range on another address", []network.HostPortRequest{to(req("tcp", tenNine, 8002, 8003), 80)},
			bindFailure{port: 8002, err: unix.EADDRNOTAVAIL}, errdefs.KindInvalid,
			"failed to bind host port 8002 for 10.9.9.9:8002-8003:172.17.0.3:80/tcp: cannot assign requested address"},
		{"range published, on another address", []network.HostPortRequest{to(req("tcp", tenNine, 8000, 8001), 80)},
			bindFailure{port: 8000, err: unix.EADDRNOTAVAIL}, errdefs.KindInvalid,
			"failed to bind host port 8000 for 10.9.9.9:8000-8001:172.17.0.3:80/tcp: cannot assign requested address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.f
			err := a.word(&f, tc.reqs, make([]network.HostPort, len(tc.reqs)))
			if err == nil || err.Error() != tc.want {
				t.Errorf("error %v, want %q", err, tc.want)
			}
			if got := errdefs.KindOf(err); got != tc.kind {
				t.Errorf("kind %v, want %v", got, tc.kind)
			}
		})
	}
}
