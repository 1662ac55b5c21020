package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/berth-net/berth/internal/sandbox"
)

// exchangePort is where Exchanges' server listens.
const exchangePort = 5202

// exchangeSize is the bytes of each request and of each answer: a small
// RPC, where the cost per packet and per connection shows, not the
// bandwidth.
const exchangeSize = 64

// Exchanges runs an echo server in the namespace at serverNS (on addr)
// and a client in clientNS for dur, and returns how many exchanges per
// second the client made: a request of exchangeSize bytes and its echo,
// each on a new TCP connection (fresh, dialled, answered, closed by the
// server so that the TIME-WAIT is on its side and the client's ports do
// not run out), or with fresh false all on one connection. Both ends are
// sockets of this process, made on a thread that entered the namespace
// (sandbox.Do), so what is measured is the namespaces' path (veths, the
// bridge, any rules and connection tracking in them), not a tool's start.
func Exchanges(ctx context.Context, serverNS, clientNS string, addr netip.Addr, dur time.Duration, fresh bool) (float64, error) {
	at := netip.AddrPortFrom(addr, exchangePort).String()
	var ln net.Listener
	if err := sandbox.Do(serverNS, func() (err error) {
		ln, err = net.Listen("tcp4", at)
		return err
	}); err != nil {
		return 0, fmt.Errorf("listen in %s: %w", serverNS, err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { echo(c, fresh) })
		}
	})
	var n int
	var elapsed time.Duration
	err := sandbox.Do(clientNS, func() error {
		buf := make([]byte, exchangeSize)
		var c net.Conn
		defer func() {
			if c != nil {
				c.Close()
			}
		}()
		start := time.Now()
		end := start.Add(dur)
		for ; time.Now().Before(end); n++ {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if c == nil {
				var err error
				if c, err = net.DialTimeout("tcp4", at, 5*time.Second); err != nil {
					return err
				}
				c.SetDeadline(end.Add(5 * time.Second))
			}
			if _, err := c.Write(buf); err != nil {
				return err
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				return err
			}
			if fresh {
				// The server closes first; its FIN is waited for, so that
				// the client's end is gone before the next dial.
				if _, err := c.Read(buf[:1]); !errors.Is(err, io.EOF) {
					return fmt.Errorf("after the answer: %v, want the server's close", err)
				}
				c.Close()
				c = nil
			}
		}
		elapsed = time.Since(start)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("exchange %d with %s from %s: %w", n, at, clientNS, err)
	}
	return float64(n) / elapsed.Seconds(), nil
}

// echo answers each exchangeSize-byte request on c with itself, and
// closes c after the first when fresh.
func echo(c net.Conn, fresh bool) {
	defer c.Close()
	buf := make([]byte, exchangeSize)
	for {
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		if _, err := c.Write(buf); err != nil || fresh {
			return
		}
	}
}
