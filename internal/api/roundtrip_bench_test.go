package api

import (
	"context"
	"net"
	"path/filepath"
	"testing"

	"github.com/berth-net/berth/internal/client"
)

// BenchmarkConnectRoundTrip is the API's own share of a `network connect`:
// the berth client's POST over a unix socket, the server's routing and
// decoding, and a backend that does nothing. berth-bench's connect row
// measures the same call with the real work behind it, so the difference
// between the two is the work.
//
//	go test -run '^$' -bench ConnectRoundTrip ./internal/api/
func BenchmarkConnectRoundTrip(b *testing.B) {
	sock := filepath.Join(b.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	s := newServer(newFakeBackend())
	go s.Serve(l)
	b.Cleanup(func() { s.Shutdown(context.Background()) })
	c, err := client.New("unix://"+sock, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := c.NetworkConnect(ctx, "web", "test1", nil); err != nil { // negotiates the version too
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if err := c.NetworkConnect(ctx, "web", "test1", nil); err != nil {
			b.Fatal(err)
		}
	}
}
