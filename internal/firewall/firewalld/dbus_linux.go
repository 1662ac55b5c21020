package firewalld

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/berth-net/berth/internal/sandbox"
	"github.com/godbus/dbus/v5"
)

const (
	busName   = "org.fedoraproject.FirewallD1"
	objPath   = "/org/fedoraproject/FirewallD1"
	zoneIface = busName + ".zone"
	// callTimeout bounds one call: a firewalld that does not answer must
	// not hold a network create for ever.
	callTimeout = 10 * time.Second
)

// Client is firewalld's D-Bus API, for the bridges of one network
// namespace: it answers ErrNotManaged unless firewalld runs there (a
// firewalld on the same bus that filters another namespace — the host's,
// while berth runs in a namespace of its own — is never touched). It
// watches firewalld's reloads and (re)starts and calls back after each.
type Client struct {
	conn  *dbus.Conn
	obj   dbus.BusObject
	netns string // the managed namespace, as /proc/PID/ns/net reads: "net:[4026531840]"
	log   *slog.Logger

	mu       sync.Mutex
	managed  bool   // firewalld's current owner of busName runs in netns
	onChange func() // after a reload, or a (re)start in netns
	// reloadedAt is when berth last heard firewalld reload or start
	// (docker info's ReloadedAt, as moby's FirewalldReloadedAt).
	reloadedAt time.Time
}

// Dial connects to the D-Bus bus at address ("" the system bus:
// $DBUS_SYSTEM_BUS_ADDRESS, else /run/dbus/system_bus_socket) for the
// bridges of the network namespace at netnsPath ("" the caller's). No
// bus is an error; no firewalld on it is not (one may start later).
func Dial(address, netnsPath string, log *slog.Logger) (*Client, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ns, err := netnsID(netnsPath)
	if err != nil {
		return nil, err
	}
	var conn *dbus.Conn
	if address == "" {
		conn, err = dbus.ConnectSystemBus()
	} else {
		conn, err = dbus.Connect(address)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to D-Bus: %w", err)
	}
	c := &Client{conn: conn, obj: conn.Object(busName, objPath), netns: ns, log: log}
	for _, opts := range [][]dbus.MatchOption{
		{dbus.WithMatchObjectPath(objPath), dbus.WithMatchInterface(busName), dbus.WithMatchMember("Reloaded")},
		{dbus.WithMatchSender("org.freedesktop.DBus"), dbus.WithMatchInterface("org.freedesktop.DBus"),
			dbus.WithMatchMember("NameOwnerChanged"), dbus.WithMatchArg(0, busName)},
	} {
		if err := conn.AddMatchSignal(opts...); err != nil {
			conn.Close()
			return nil, fmt.Errorf("watch firewalld on D-Bus: %w", err)
		}
	}
	signals := make(chan *dbus.Signal, 16)
	conn.Signal(signals)
	c.managed = c.manages()
	go c.watch(signals)
	return c, nil
}

// netnsID names the network namespace at path ("" the calling thread's).
func netnsID(path string) (string, error) {
	if path != "" {
		var id string
		err := sandbox.Do(path, func() error {
			var err error
			id, err = os.Readlink("/proc/thread-self/ns/net")
			return err
		})
		return id, err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return os.Readlink("/proc/thread-self/ns/net")
}

// Managed reports whether firewalld runs in the client's namespace.
func (c *Client) Managed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.managed
}

// ReloadedAt is when firewalld last reloaded or started, as far as the
// client heard (zero: not since the client connected).
func (c *Client) ReloadedAt() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reloadedAt
}

// OnChange has fn called after every reload of firewalld, and whenever
// it starts in the client's namespace: it has forgotten (or never had)
// the runtime bindings then.
func (c *Client) OnChange(fn func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onChange = fn
}

// Close ends the connection and the watch.
func (c *Client) Close() error { return c.conn.Close() }

// manages asks the bus which process owns firewalld's name and reports
// whether it runs in the client's namespace.
func (c *Client) manages() bool {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	var pid uint32
	if err := c.conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.GetConnectionUnixProcessID", 0, busName).Store(&pid); err != nil {
		return false // no owner: not running
	}
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return false // gone, or in another PID namespace: not ours to judge
	}
	if ns != c.netns {
		c.log.Info("firewalld runs in another network namespace; berth leaves it alone", "pid", pid)
		return false
	}
	return true
}

func (c *Client) watch(signals <-chan *dbus.Signal) {
	for sig := range signals {
		switch sig.Name {
		case busName + ".Reloaded":
			c.changed("reloaded", c.Managed())
		case "org.freedesktop.DBus.NameOwnerChanged":
			if len(sig.Body) != 3 {
				continue
			}
			if owner, _ := sig.Body[2].(string); owner == "" {
				c.mu.Lock()
				c.managed = false
				c.mu.Unlock()
				continue
			}
			managed := c.whenReady()
			c.mu.Lock()
			c.managed = managed
			c.mu.Unlock()
			c.changed("started", managed)
		}
	}
}

// whenReady waits, up to callTimeout, until a firewalld that has just
// taken its name answers (it loads its configuration after), and reports
// whether it manages the client's namespace.
func (c *Client) whenReady() bool {
	if !c.manages() {
		return false
	}
	deadline := time.Now().Add(callTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		var v dbus.Variant
		err := c.obj.CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0, busName, "state").Store(&v)
		cancel()
		state, _ := v.Value().(string)
		if err == nil && state == "RUNNING" || time.Now().After(deadline) {
			return err == nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *Client) changed(what string, managed bool) {
	if !managed {
		return
	}
	c.mu.Lock()
	fn := c.onChange
	c.reloadedAt = time.Now()
	c.mu.Unlock()
	c.log.Info("firewalld "+what+"; binding berth's bridges again", "zone", Zone)
	if fn != nil {
		fn()
	}
}

// call calls method on firewalld, if it manages the client's namespace.
func (c *Client) call(method string, out any, args ...any) error {
	if !c.Managed() {
		return ErrNotManaged
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	call := c.obj.CallWithContext(ctx, method, 0, args...)
	if call.Err != nil {
		return call.Err
	}
	if out == nil {
		return nil
	}
	return call.Store(out)
}

// ZoneOf implements Service.
func (c *Client) ZoneOf(iface string) (string, error) {
	var zone string
	err := c.call(zoneIface+".getZoneOfInterface", &zone, iface)
	return zone, err
}

// Bind implements Service; an interface already in zone is not an error.
func (c *Client) Bind(zone, iface string) error {
	if err := c.call(zoneIface+".addInterface", nil, zone, iface); err != nil && !isFirewalldError(err, "ZONE_ALREADY_SET") {
		return err
	}
	return nil
}

// Unbind implements Service; an interface not in zone is not an error.
func (c *Client) Unbind(zone, iface string) error {
	if err := c.call(zoneIface+".removeInterface", nil, zone, iface); err != nil &&
		!isFirewalldError(err, "UNKNOWN_INTERFACE") && !isFirewalldError(err, "ZONE_CONFLICT") {
		return err
	}
	return nil
}

// isFirewalldError reports whether err is firewalld's exception with the
// given code (its message starts with the code: "ZONE_ALREADY_SET: …").
func isFirewalldError(err error, code string) bool {
	var de dbus.Error
	var dp *dbus.Error
	switch {
	case errors.As(err, &de):
	case errors.As(err, &dp):
		de = *dp
	default:
		return false
	}
	return de.Name == busName+".Exception" && strings.HasPrefix(de.Error(), code)
}
