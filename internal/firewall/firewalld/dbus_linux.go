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
	busDaemon = "org.freedesktop.DBus"
	// callTimeout bounds one call.
	callTimeout = 10 * time.Second
	// readyWait bounds the wait for a firewalld that has taken its name
	// to finish loading its configuration (large ipsets take a while).
	readyWait = 5 * time.Minute
)

// Client is firewalld's D-Bus API, for the bridges of one network
// namespace: it answers ErrNotManaged unless firewalld runs there (a
// firewalld on the same bus that filters another namespace — the host's,
// while berth runs in a namespace of its own — is never touched). Run
// connects and watches firewalld's reloads and (re)starts in the
// background; nothing waits for the bus.
type Client struct {
	address string // "" the system bus
	netns   string // the managed namespace, as /proc/PID/ns/net reads: "net:[4026531840]"
	log     *slog.Logger

	mu    sync.Mutex
	conn  *dbus.Conn     // nil until Run has connected
	obj   dbus.BusObject // the managed firewalld's object, by its unique name
	owner string         // the unique bus name of firewalld while it is managed
	known bool           // whether Run has found out if firewalld is managed
	// reloadedAt is when berth last heard firewalld reload or start
	// (docker info's ReloadedAt, as moby's FirewalldReloadedAt).
	reloadedAt time.Time
	warned     string // the last reason logged for not managing firewalld
}

// NewClient returns a client for the D-Bus bus at address ("" the system
// bus: $DBUS_SYSTEM_BUS_ADDRESS, else /run/dbus/system_bus_socket) and
// the bridges of the network namespace at netnsPath ("" the caller's).
// It does not connect: Run does.
func NewClient(address, netnsPath string, log *slog.Logger) (*Client, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ns, err := netnsID(netnsPath)
	if err != nil {
		return nil, err
	}
	return &Client{address: address, netns: ns, log: log}, nil
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

// Run connects to the bus and, until ctx ends, calls changed whenever
// firewalld starts managing the namespace, reloads or goes: its runtime
// bindings are to be made again (or are gone). A bus that cannot be
// reached at first ends it (logged at debug: most hosts have no
// firewalld); one that drops later is connected to again, with back-off.
func (c *Client) Run(ctx context.Context, changed func()) {
	const first, most = time.Second, 30 * time.Second
	for backoff, connected := first, false; ; backoff = min(2*backoff, most) {
		ok := c.watch(ctx, changed, connected)
		if ctx.Err() != nil {
			return
		}
		if !ok && !connected {
			return // no bus
		}
		connected = true
		c.forget(changed)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
}

// forget records that firewalld is not managed (the connection is gone).
func (c *Client) forget(changed func()) {
	c.mu.Lock()
	had := c.owner != ""
	c.owner, c.obj, c.known = "", nil, true
	c.mu.Unlock()
	if had {
		changed()
	}
}

// watch is one connection of Run: false if it could not be made (when
// quiet, logged at debug only).
func (c *Client) watch(ctx context.Context, changed func(), again bool) bool {
	conn, err := c.connect(ctx)
	if err != nil {
		if again {
			c.log.Warn("firewalld: cannot reach D-Bus again; will retry", "err", err)
		} else {
			c.log.Debug("no D-Bus system bus; firewalld is not watched", "err", err)
			c.forget(changed)
			changed()
		}
		return false
	}
	defer conn.Close()
	signals := make(chan *dbus.Signal, 64)
	conn.Signal(signals)
	for _, opts := range [][]dbus.MatchOption{
		{dbus.WithMatchSender(busName), dbus.WithMatchObjectPath(objPath), dbus.WithMatchInterface(busName), dbus.WithMatchMember("Reloaded")},
		{dbus.WithMatchSender(busDaemon), dbus.WithMatchInterface(busDaemon), dbus.WithMatchMember("NameOwnerChanged"), dbus.WithMatchArg(0, busName)},
	} {
		if err := conn.AddMatchSignal(opts...); err != nil {
			c.log.Warn("firewalld: cannot watch it on D-Bus", "err", err)
			return true
		}
	}
	c.mu.Lock()
	c.conn = conn
	c.mu.Unlock()
	c.recheck(ctx, changed)
	for {
		select {
		case <-ctx.Done():
			return true
		case sig, ok := <-signals:
			if !ok {
				return true // the connection dropped
			}
			// Any process may send a signal: only the bus's word on who
			// owns firewalld's name, and firewalld's own reloads, count.
			// The signal's body is not trusted: the bus is asked again.
			switch {
			case sig.Name == busDaemon+".NameOwnerChanged" && sig.Sender == busDaemon:
				c.recheck(ctx, changed)
			case sig.Name == busName+".Reloaded" && sig.Sender != "" && sig.Sender == c.currentOwner():
				c.log.Info("firewalld reloaded; binding berth's bridges again", "zone", Zone)
				c.mu.Lock()
				c.reloadedAt = time.Now()
				c.mu.Unlock()
				changed()
			case sig.Name == busName+".Reloaded" && c.currentOwner() == "":
				// A firewalld berth does not manage reloaded: one that
				// was not ready may be now (the bus is asked, not the
				// signal's sender believed).
				c.recheck(ctx, changed)
			}
		}
	}
}

// connect dials the bus; Run is the only caller, in the background, so a
// bus that accepts and never answers holds up nothing else, and ctx's end
// closes it.
func (c *Client) connect(ctx context.Context) (*dbus.Conn, error) {
	if c.address == "" {
		return dbus.ConnectSystemBus(dbus.WithContext(ctx))
	}
	return dbus.Connect(c.address, dbus.WithContext(ctx))
}

// recheck asks the bus who owns firewalld's name now, waits for it to be
// ready, and records whether it manages the namespace; changed follows
// any change of owner.
func (c *Client) recheck(ctx context.Context, changed func()) {
	owner, why := c.managingOwner(ctx)
	if ctx.Err() != nil {
		return
	}
	c.mu.Lock()
	was, first := c.owner, !c.known
	c.owner, c.known = owner, true
	c.obj = nil
	if owner != "" {
		// Calls go to the unique name that was checked, never to the
		// well-known one (which another process may own by then, and
		// which could start a firewalld by D-Bus activation).
		c.obj = c.conn.Object(owner, objPath)
	}
	if owner != "" && owner != was {
		c.reloadedAt = time.Now()
	}
	logIt := why != "" && why != c.warned
	c.warned = why
	c.mu.Unlock()
	if logIt {
		c.log.Info("firewalld is not managed by berth", "why", why)
	}
	if owner != was || first {
		if owner != "" && owner != was {
			c.log.Info("firewalld runs in berth's network namespace; binding berth's bridges", "zone", Zone)
		}
		changed()
	}
}

// managingOwner returns the unique name of the firewalld that manages the
// namespace, once it is ready, or "" and why not.
func (c *Client) managingOwner(ctx context.Context) (owner, why string) {
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	bus := conn.BusObject()
	call := func(method string, out any, args ...any) error {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		return bus.CallWithContext(cctx, method, 0, args...).Store(out)
	}
	if err := call(busDaemon+".GetNameOwner", &owner, busName); err != nil {
		return "", "" // not running: nothing to say
	}
	// The bus gives PIDs of its own PID namespace: only when it gives
	// berth's own PID for berth's connection are they berth's too.
	var self, pid uint32
	if names := conn.Names(); len(names) == 0 || call(busDaemon+".GetConnectionUnixProcessID", &self, names[0]) != nil || int(self) != os.Getpid() {
		return "", "the bus is in another PID namespace"
	}
	if err := call(busDaemon+".GetConnectionUnixProcessID", &pid, owner); err != nil {
		return "", ""
	}
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return "", ""
	}
	if ns != c.netns {
		return "", "firewalld runs in another network namespace"
	}
	// firewalld takes its name before it has loaded its configuration,
	// and answers once it has.
	obj := conn.Object(owner, objPath)
	for deadline := time.Now().Add(readyWait); ; {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		var v dbus.Variant
		err := obj.CallWithContext(cctx, "org.freedesktop.DBus.Properties.Get", 0, busName, "state").Store(&v)
		cancel()
		// FAILED is a firewalld that fell back to its stock
		// configuration: it runs, filters, and takes runtime bindings.
		if state, _ := v.Value().(string); err == nil && (state == "RUNNING" || state == "FAILED") {
			return owner, ""
		}
		var now string
		if call(busDaemon+".GetNameOwner", &now, busName); now != owner {
			return "", "" // gone, or another started: its own NameOwnerChanged follows
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return "", "firewalld did not become ready"
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (c *Client) currentOwner() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.owner
}

// Managed reports whether a ready firewalld runs in the namespace.
func (c *Client) Managed() bool { return c.currentOwner() != "" }

// ReloadedAt is when firewalld last reloaded or started, as far as the
// client heard (zero: not since it connected).
func (c *Client) ReloadedAt() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reloadedAt
}

// call calls method on firewalld, if it manages the namespace.
func (c *Client) call(ctx context.Context, method string, out any, args ...any) error {
	c.mu.Lock()
	obj, owner, known := c.obj, c.owner, c.known
	c.mu.Unlock()
	switch {
	case !known:
		return ErrNotKnown
	case owner == "" || obj == nil:
		return ErrNotManaged
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	call := obj.CallWithContext(ctx, method, dbus.FlagNoAutoStart, args...)
	if call.Err != nil {
		return call.Err
	}
	if out == nil {
		return nil
	}
	return call.Store(out)
}

// ZoneOf implements Service.
func (c *Client) ZoneOf(ctx context.Context, iface string) (string, error) {
	var zone string
	err := c.call(ctx, zoneIface+".getZoneOfInterface", &zone, iface)
	return zone, err
}

// Bind implements Service; an interface already in zone is not an error.
func (c *Client) Bind(ctx context.Context, zone, iface string) error {
	if err := c.call(ctx, zoneIface+".addInterface", nil, zone, iface); err != nil && !isFirewalldError(err, "ZONE_ALREADY_SET") {
		return err
	}
	return nil
}

// Unbind implements Service; an interface not in zone is not an error.
func (c *Client) Unbind(ctx context.Context, zone, iface string) error {
	if err := c.call(ctx, zoneIface+".removeInterface", nil, zone, iface); err != nil &&
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
