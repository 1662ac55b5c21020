package nftables

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/berth-net/berth/internal/firewall"
	nftlib "github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// This file queues translated objects on the connection. Nothing reaches the
// kernel until flush, which sends everything queued as one transaction.

// queueRuleset queues the creation of the whole table.
func (f *Firewall) queueRuleset(rs *firewall.Ruleset) error {
	chains, err := prepareChains(f.table, rs.Chains)
	if err != nil {
		return err
	}
	f.conn.AddTable(f.table)
	for _, m := range rs.Maps {
		if err := f.conn.AddSet(nftSet(f.table, m), nil); err != nil {
			return fmt.Errorf("map %q: %w", m.Name, err)
		}
	}
	for _, c := range chains {
		f.queueChain(c)
	}
	// Elements last: their jumps need the chains.
	for _, m := range rs.Maps {
		if err := f.queueElements(m.Elements); err != nil {
			return err
		}
	}
	return nil
}

// queueSkeleton asserts the table, the maps and the base chains with their
// rules. Adding what exists is not an error; the base chains are flushed
// first so that their rules are never doubled.
func (f *Firewall) queueSkeleton() error {
	base := firewall.Base()
	chains, err := prepareChains(f.table, base.Chains)
	if err != nil {
		return err
	}
	f.conn.AddTable(f.table)
	for _, m := range base.Maps {
		if err := f.conn.AddSet(nftSet(f.table, m), nil); err != nil {
			return fmt.Errorf("map %q: %w", m.Name, err)
		}
	}
	for _, c := range chains {
		f.queueChain(c)
	}
	return nil
}

// queueNetwork queues one network's chains and then its map elements.
func (f *Firewall) queueNetwork(nr firewall.NetworkRules) error {
	chains, err := prepareChains(f.table, nr.Chains)
	if err != nil {
		return err
	}
	for _, c := range chains {
		f.queueChain(c)
	}
	return f.queueElements(nr.Elements)
}

// preparedChain is a chain translated to netlink form, ready to queue.
type preparedChain struct {
	chain *nftlib.Chain
	rules []*nftlib.Rule
}

// prepareChains translates chains before anything is queued, so that a
// translation error never leaves half a batch on the connection.
func prepareChains(t *nftlib.Table, cs []firewall.Chain) ([]preparedChain, error) {
	out := make([]preparedChain, 0, len(cs))
	for _, c := range cs {
		pc := preparedChain{chain: nftChain(t, c)}
		for _, r := range c.Rules {
			nr, err := nftRule(pc.chain, r)
			if err != nil {
				return nil, err
			}
			pc.rules = append(pc.rules, nr)
		}
		out = append(out, pc)
	}
	return out, nil
}

// queueChain adds the chain if missing, empties it (stale rules of an
// earlier run may be there) and adds its rules.
func (f *Firewall) queueChain(c preparedChain) {
	f.conn.AddChain(c.chain)
	f.conn.FlushChain(c.chain)
	for _, r := range c.rules {
		f.conn.AddRule(r)
	}
}

func (f *Firewall) queueElements(es []firewall.Element) error {
	if len(es) > 0 && (es[0].Port.HostPort != 0 || es[0].Port.Routed) {
		return f.queuePortElements(es, true) // many: chunked messages
	}
	for _, e := range es {
		if err := f.conn.SetAddElements(setByName(f.table, e.Map), nftElements(e, true)); err != nil {
			return fmt.Errorf("element %s of map %q: %w", e.KeyString(), e.Map, err)
		}
	}
	return nil
}

// queueDelete queues the removal of one network: elements first, since the
// kernel refuses to delete a chain that a map element still jumps to.
func (f *Firewall) queueDelete(nr firewall.NetworkRules) error {
	for _, e := range nr.Elements {
		if err := f.conn.SetDeleteElements(setByName(f.table, e.Map), nftElements(e, false)); err != nil {
			return fmt.Errorf("element %s of map %q: %w", e.KeyString(), e.Map, err)
		}
	}
	for _, c := range nr.Chains {
		ch := nftChain(f.table, c)
		f.conn.FlushChain(ch)
		f.conn.DelChain(ch)
	}
	return nil
}

// discard throws away a half-queued batch. google/nftables cannot drop
// queued messages, so the batch is sent with one message the kernel must
// reject (a chain name longer than NFT_CHAIN_MAXNAMELEN): the kernel then
// aborts the whole transaction and nothing of it is applied.
func (f *Firewall) discard() {
	f.conn.DelChain(&nftlib.Chain{Table: f.table, Name: strings.Repeat("x", 300)})
	_ = f.flush()
}

// socketBuffer is the send and receive buffer of the netlink socket. The
// kernel takes a batch in one sendmsg, which the send buffer limits (the
// default, about 200 KiB, is exceeded by some 80 networks), and answers every
// message with an acknowledgement, which must fit the receive buffer. The
// kernel only reserves memory as it is used.
const socketBuffer = 32 << 20

// bigBuffers sets both buffers to socketBuffer, beyond net.core.wmem_max and
// rmem_max where the process may (CAP_NET_ADMIN), as nft does.
func bigBuffers(c *netlink.Conn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("netlink socket: %w", err)
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		for _, o := range [][2]int{{unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}, {unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}} {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[0], socketBuffer) == nil {
				continue
			}
			if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[1], socketBuffer); err != nil {
				serr = errors.Join(serr, err)
			}
		}
	})
	if err := errors.Join(err, serr); err != nil {
		return fmt.Errorf("set netlink socket buffers: %w", err)
	}
	return nil
}

// flush sends the queued messages as one batch (one transaction), f.mu
// held. After an error whose answers were left unread, the socket is
// replaced (reopen).
func (f *Firewall) flush() error {
	if err := f.conn.Flush(); err != nil {
		if errors.Is(err, os.ErrPermission) || errors.Is(err, unix.ENOBUFS) {
			f.reopen()
		}
		return &batchError{err: err}
	}
	return nil
}

// batchError shortens google/nftables' error for a failed batch, which
// repeats the same errno once per message the kernel rejected.
type batchError struct{ err error }

func (e *batchError) Unwrap() error { return e.err }

func (e *batchError) Error() string {
	var uniq []string
	for _, l := range strings.Split(e.err.Error(), "\n") {
		if l = strings.TrimPrefix(l, "conn.Receive: "); !slices.Contains(uniq, l) {
			uniq = append(uniq, l)
		}
	}
	return "nftables batch: " + strings.Join(uniq, "; ")
}

func ignoreMissing(err error) error {
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}
