// Package nftables is berth's packet filter on Linux: it owns the nftables
// table "inet berth" and writes it through netlink (google/nftables), never by
// running nft. Every change is one atomic batch. It never reads the host's
// ruleset to learn its own state — what it last applied is kept in memory and
// Rebuild restores the whole table from the caller's state — and it never
// touches another table.
package nftables

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"

	"github.com/berth-net/berth/internal/firewall"
	nftlib "github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Firewall implements firewall.Firewall with one nftables table.
type Firewall struct {
	log   *slog.Logger
	conn  *nftlib.Conn
	table *nftlib.Table // inet berth, or the name NewTable was given
	netns string        // where the table is, for conntrack (ports_linux.go); "" is our own
	// portID is the netlink port ID of conn's socket (committedHere).
	portID uint32

	mu sync.Mutex
	// nets is what the table holds, by bridge, as far as this Firewall
	// applied it. DelNetwork and a replacing AddNetwork remove what is here.
	nets map[string]firewall.Network
	// built is true once this Firewall has made the table's skeleton (maps
	// and base chains). Until then AddNetwork asserts it; afterwards it is
	// left alone, because re-adding base chain rules makes the kernel
	// revalidate every jump in the table, which grows with the networks.
	built bool
	// ports are the published ports the table holds (ports_linux.go).
	ports  firewall.PortIndex   // by host side
	claims *firewall.PortClaims // the host side of ports, for conflict checks
}

var _ firewall.Firewall = (*Firewall)(nil)

// New opens a netlink connection to nftables in the network namespace bound
// at netnsPath, or in the caller's own namespace when netnsPath is "".
// The connection stays in that namespace until Close.
func New(netnsPath string, log *slog.Logger) (*Firewall, error) {
	return NewTable(netnsPath, firewall.TableName, log)
}

// NewTable is New for a table of another name in the inet family: the
// rules are the same, and neither table's owner touches the other's.
// berth-cni's is "berth-cni". The table watcher (WatchTable) knows only
// berth's own.
func NewTable(netnsPath, name string, log *slog.Logger) (*Firewall, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	conn, portID, err := openLasting(netnsPath)
	if err != nil {
		return nil, err
	}
	return &Firewall{log: log, conn: conn, table: &nftlib.Table{Family: nftlib.TableFamilyINet, Name: name}, netns: netnsPath, portID: portID, nets: map[string]firewall.Network{}, claims: firewall.NewPortClaims()}, nil
}

// openLasting opens the Firewall's lasting nftables socket in the
// namespace at netnsPath and returns it with its netlink port ID, which
// the watcher tells this socket's transactions from everyone else's by
// (committedHere: ownPorts).
func openLasting(netnsPath string) (*nftlib.Conn, uint32, error) {
	var portID uint32
	recordPort := func(c *netlink.Conn) (err error) {
		portID, err = portIDOf(c)
		return err
	}
	conn, done, err := dial(netnsPath, nftlib.AsLasting(), nftlib.WithSockOptions(bigBuffers, recordPort))
	if err != nil {
		return nil, 0, err
	}
	done() // the lasting socket is made
	ownPorts.Store(portID, struct{}{})
	return conn, portID, nil
}

// reopen replaces the lasting socket (f.mu held) after a batch whose
// answers google/nftables stopped reading at the first: it returns at a
// permission error or ENOBUFS ("the kernel will only send one error"),
// but the kernel answers every message of the batch, and the rest stay
// queued on the socket, where the next batch would read them as its own
// (every later batch then failed with the old error).
func (f *Firewall) reopen() {
	conn, portID, err := openLasting(f.netns)
	if err != nil {
		f.log.Warn("reopen the nftables socket", "error", err)
		return
	}
	ownPorts.Delete(f.portID)
	_ = f.conn.CloseLasting()
	f.conn, f.portID = conn, portID
}

// dial opens an nftables connection in the network namespace at netnsPath
// ("" is the caller's). A lasting connection's socket is made in the
// namespace while nftlib.New runs; any other opens a socket per call
// through the namespace's file, so the caller keeps that open until it
// is done with the connection: it calls done.
func dial(netnsPath string, opts ...nftlib.ConnOption) (conn *nftlib.Conn, done func(), err error) {
	done = func() {}
	if netnsPath != "" {
		ns, err := os.Open(netnsPath)
		if err != nil {
			return nil, nil, fmt.Errorf("open netns %q: %w", netnsPath, err)
		}
		done = func() { ns.Close() }
		opts = append(opts, nftlib.WithNetNSFd(int(ns.Fd())))
	}
	if conn, err = nftlib.New(opts...); err != nil {
		done()
		return nil, nil, fmt.Errorf("open nftables netlink socket (netns %q): %w", netnsPath, err)
	}
	return conn, done, nil
}

// Close closes the netlink connection. The table stays as it is.
func (f *Firewall) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	ownPorts.Delete(f.portID)
	return f.conn.CloseLasting()
}

// Rebuild deletes berth's table if it exists and adds it complete for nets
// and the published ports, in one batch: packets see either the old table or
// the new one.
func (f *Firewall) Rebuild(ctx context.Context, nets []firewall.Network, ports ...firewall.PortMapping) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rebuild(nets, ports)
}

func (f *Firewall) rebuild(nets []firewall.Network, ports []firewall.PortMapping) error {
	rs, err := firewall.BuildWithPorts(nets, ports)
	if err != nil {
		return err
	}
	// Adding the table first makes the delete succeed when it is missing.
	f.conn.AddTable(f.table)
	f.conn.DelTable(f.table)
	if err := f.queueRuleset(rs); err != nil {
		f.discard()
		return err
	}
	if err := f.flush(); err != nil {
		return fmt.Errorf("rebuild table %s %s: %w", firewall.TableFamily, f.table.Name, err)
	}
	f.remember(nets, ports)
	f.log.Info("firewall table rebuilt", "networks", len(nets), "ports", len(ports))
	return nil
}

// Restore rebuilds the table from what f has applied (firewall.Restorer),
// under the lock every change takes, so that no change under way is lost
// or undone.
func (f *Firewall) Restore(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.built {
		return firewall.ErrNothingToRestore
	}
	return f.rebuild(f.othersThan(""), f.portList())
}

// AddNetwork adds n's chains and map entries, replacing what this Firewall
// applied before for the same bridge, in one batch. Before the first
// Rebuild the table's skeleton is asserted in the same batch, so AddNetwork
// also works on a missing table and keeps other networks' rules. If the
// batch fails (someone changed the table behind berth's back), the whole
// table is rebuilt from what this Firewall knows, which is atomic too.
func (f *Firewall) AddNetwork(ctx context.Context, n firewall.Network) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	want := append(f.othersThan(n.Bridge), n)
	if err := firewall.Validate(want); err != nil {
		return err
	}
	nr, err := firewall.RulesFor(n)
	if err != nil {
		return err
	}
	err = f.applyAdd(n.Bridge, nr)
	if err == nil {
		f.built = true
		n = n.Masked()
		f.nets[n.Bridge] = n
		f.log.Debug("firewall network added", "bridge", n.Bridge, "subnet", n.Subnet, "subnet6", n.Subnet6)
		return nil
	}
	f.log.Warn("adding network rules failed, rebuilding the table", "bridge", n.Bridge, "error", err)
	if rerr := f.rebuild(want, f.portList()); rerr != nil {
		return fmt.Errorf("add rules of bridge %q: %w", n.Bridge, errors.Join(err, rerr))
	}
	return nil
}

func (f *Firewall) applyAdd(bridge string, nr firewall.NetworkRules) error {
	if !f.built {
		if err := f.queueSkeleton(); err != nil {
			f.discard()
			return err
		}
	}
	if old, ok := f.nets[bridge]; ok {
		oldRules, err := firewall.RulesFor(old)
		if err != nil {
			f.discard()
			return err
		}
		if err := f.queueDelete(oldRules); err != nil {
			f.discard()
			return err
		}
	}
	if err := f.queueNetwork(nr); err != nil {
		f.discard()
		return err
	}
	return f.flush()
}

// DelNetwork removes the chains and map entries of n's bridge in one batch.
// A network this Firewall never applied is removed object by object where
// found, so that leftovers of an earlier run go too; missing ones are fine.
func (f *Firewall) DelNetwork(ctx context.Context, n firewall.Network) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	old, known := f.nets[n.Bridge]
	if !known {
		return f.deleteUnknown(n)
	}
	nr, err := firewall.RulesFor(old)
	if err != nil {
		return err
	}
	err = f.queueDelete(nr)
	if err == nil {
		err = f.flush()
	} else {
		f.discard()
	}
	if err == nil {
		delete(f.nets, n.Bridge)
		f.log.Debug("firewall network deleted", "bridge", n.Bridge)
		return nil
	}
	f.log.Warn("deleting network rules failed, rebuilding the table", "bridge", n.Bridge, "error", err)
	if rerr := f.rebuild(f.othersThan(n.Bridge), f.portList()); rerr != nil {
		return fmt.Errorf("delete rules of bridge %q: %w", n.Bridge, errors.Join(err, rerr))
	}
	return nil
}

// deleteUnknown removes every object a network on n's bridge could own, each
// in its own batch so that a missing one does not stop the others.
func (f *Firewall) deleteUnknown(n firewall.Network) error {
	// Masquerade on, internal off: the variant with the most objects.
	n.Masquerade, n.Internal = true, false
	nr, err := firewall.RulesFor(n)
	if err != nil {
		return nil // a network berth cannot build has no rules to delete
	}
	var errs []error
	for _, e := range nr.Elements {
		if err := f.conn.SetDeleteElements(setByName(f.table, e.Map), nftElements(e, false)); err != nil {
			f.discard()
			return err
		}
		errs = append(errs, ignoreMissing(f.flush()))
	}
	for _, c := range nr.Chains {
		f.conn.DelChain(nftChain(f.table, c))
		errs = append(errs, ignoreMissing(f.flush()))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("delete rules of bridge %q: %w", n.Bridge, err)
	}
	return nil
}

// othersThan returns the applied networks except the one on bridge, sorted.
func (f *Firewall) othersThan(bridge string) []firewall.Network {
	out := make([]firewall.Network, 0, len(f.nets))
	for br, n := range f.nets {
		if br != bridge {
			out = append(out, n)
		}
	}
	slices.SortFunc(out, func(a, b firewall.Network) int { return cmp.Compare(a.Bridge, b.Bridge) })
	return out
}

// TableExists reports whether f's table is in the kernel.
func (f *Firewall) TableExists() (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, err := f.conn.ListTableOfFamily(f.table.Name, f.table.Family)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.ENOENT):
		return false, nil
	}
	return false, fmt.Errorf("look up table %s %s: %w", firewall.TableFamily, f.table.Name, err)
}

// Assume tells f that its table holds exactly nets and ports, as an
// earlier process built them, without reading or changing the kernel: a
// process that lives for one change (berth-cni) then makes that change as
// map elements and chains of its own, never re-adding the base chains
// (which a Rebuild does, and whose hooks cost the kernel an RCU grace
// period, 20-30 ms here). If the table differs after all, the first
// batch that fails on it rebuilds it from what f knows, as for any
// Firewall.
func (f *Firewall) Assume(nets []firewall.Network, ports []firewall.PortMapping) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.remember(nets, ports)
}

// remember records that the table holds exactly nets and ports.
func (f *Firewall) remember(nets []firewall.Network, ports []firewall.PortMapping) {
	f.built = true
	f.nets = map[string]firewall.Network{}
	for _, n := range nets {
		f.nets[n.Bridge] = n.Masked()
	}
	f.ports = firewall.NewPortIndex(len(ports))
	for _, m := range ports {
		f.ports.Put(normalPort(m))
	}
	f.claims = firewall.NewPortClaims()
	f.claims.Add(f.portList())
}
