package portproxy

import (
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkTCPThroughput sends 1 MiB an op from an IPv6 client through
// the proxy to an IPv4 server that discards it (root, in a namespace of
// its own: go test -c, then run the binary under unshare --net).
func BenchmarkTCPThroughput(b *testing.B) {
	srv, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	go func() {
		for {
			c, err := srv.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		b.Skip(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet6{Addr: netip.IPv6Loopback().As16()}); err != nil {
		b.Skip(err)
	}
	sa, _ := unix.Getsockname(fd)
	port := uint16(sa.(*unix.SockaddrInet6).Port)
	p, err := Start(fd, "tcp", netip.MustParseAddrPort(srv.Addr().String()), Kept{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Stop()
	c, err := net.DialTimeout("tcp6", netip.AddrPortFrom(netip.IPv6Loopback(), port).String(), 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
}
