package dns

import (
	"net"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/berth-net/berth/internal/firewall/nftables"
	"github.com/berth-net/berth/internal/nstest"
	"github.com/berth-net/berth/internal/sandbox"
)

// dialIn opens a client connection to the resolver from inside the
// namespace at path: the socket is made there, then used from here.
func dialIn(t *testing.T, path, proto string) *mdns.Conn {
	t.Helper()
	var c net.Conn
	err := sandbox.Do(path, func() error {
		var err error
		c, err = net.Dial(proto, "127.0.0.11:53")
		return err
	})
	if err != nil {
		t.Fatalf("dial %s 127.0.0.11:53 in %s: %v", proto, path, err)
	}
	t.Cleanup(func() { c.Close() })
	return &mdns.Conn{Conn: c}
}

func exchangeOn(t *testing.T, conn *mdns.Conn, q *mdns.Msg) *mdns.Msg {
	t.Helper()
	c := &mdns.Client{Timeout: 20 * time.Second}
	resp, _, err := c.ExchangeWithConn(q, conn)
	if err != nil {
		t.Fatalf("query %s: %v", q.Question[0].Name, err)
	}
	return resp
}

// TestListenInNamespace: the resolver answers on 127.0.0.11:53 inside a
// namespace, over UDP and TCP, and nothing listens there in the test's own
// namespace; after Stop the namespace's port is free again.
func TestListenInNamespace(t *testing.T) {
	ns := nstest.New(t)
	names := newFakeNames()
	names.add("sb", "web", "", "10.0.0.2")
	m := NewManager(Config{Names: names})
	t.Cleanup(func() { m.Close() })
	if err := m.Start(Sandbox{ID: "sb", Path: ns}); err != nil {
		t.Fatal(err)
	}
	for _, proto := range []string{"udp", "tcp"} {
		got := summarize(exchangeOn(t, dialIn(t, ns, proto), query("web", mdns.TypeA)))
		if got.Rcode != "NOERROR" || len(got.Answers) != 1 || got.Answers[0] != "web. 0 IN A 10.0.0.2" {
			t.Errorf("%s web = %+v, want 10.0.0.2", proto, got)
		}
	}
	if c, err := net.Dial("tcp4", "127.0.0.11:53"); err == nil {
		c.Close()
		t.Errorf("something answers on 127.0.0.11:53 in the test's own namespace")
	}
	if err := m.Stop("sb"); err != nil {
		t.Fatal(err)
	}
	// The port is free again: a new resolver binds it at once.
	if err := m.Start(Sandbox{ID: "sb", Path: ns}); err != nil {
		t.Fatalf("start again after Stop: %v", err)
	}
}

// TestListenRedirected: with a redirect (the daemon's set-up), the resolver
// answers at 127.0.0.11:53 while port 53 stays free inside the namespace: a
// server of the container's own binds it on every address, over UDP and
// TCP, as it can under Docker.
func TestListenRedirected(t *testing.T) {
	ns := nstest.New(t)
	names := newFakeNames()
	names.add("sb", "web", "", "10.0.0.2")
	m := NewManager(Config{Names: names, Listen: ListenInNamespace(nftables.RedirectDNS)})
	t.Cleanup(func() { m.Close() })
	if err := m.Start(Sandbox{ID: "sb", Path: ns}); err != nil {
		t.Fatal(err)
	}
	err := sandbox.Do(ns, func() error {
		u, err := net.ListenPacket("udp4", ":53")
		if err != nil {
			return err
		}
		defer u.Close()
		l, err := net.Listen("tcp4", ":53")
		if err != nil {
			return err
		}
		return l.Close()
	})
	if err != nil {
		t.Fatalf("a container's own server on port 53: %v", err)
	}
	for _, proto := range []string{"udp", "tcp"} {
		got := summarize(exchangeOn(t, dialIn(t, ns, proto), query("web", mdns.TypeA)))
		if got.Rcode != "NOERROR" || len(got.Answers) != 1 || got.Answers[0] != "web. 0 IN A 10.0.0.2" {
			t.Errorf("%s web through 127.0.0.11:53 = %+v, want 10.0.0.2", proto, got)
		}
	}
}
