package reliability

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/testworld"
)

// StormConfig sets the size of a crash storm.
type StormConfig struct {
	Kills int // how many times the daemon is SIGKILLed (and restarted)
	// MaxDelay bounds the random time between a round's start and its
	// kill; the kills land all over the loop's operations.
	MaxDelay time.Duration
	Seed     uint64
	// Network is a user network (created if missing) the loop connects to.
	Network, Subnet string
}

// StormReport is what a crash storm did and found.
type StormReport struct {
	Kills       int
	Ops         int            // API operations that completed
	Interrupted map[string]int // operation kind → how often the kill cut it off
	Restarts    []time.Duration
	Final       Counts
	Leaks       []string // every disagreement, prefixed with the round
}

// Settled checks until the kernel has caught up with the daemon (the
// bridge driver deletes veths in the background) or attempts run out;
// it returns the last result. Waiting is bounded and asserts no speed.
func Settled(t testing.TB, w *testworld.World, c *Client) (Counts, Leaks) {
	t.Helper()
	var counts Counts
	var leaks Leaks
	for range 100 {
		counts, leaks = Check(t, w, c)
		if len(leaks) == 0 {
			return counts, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return counts, leaks
}

// CrashStorm SIGKILLs d at random points of an operation loop cfg.Kills
// times, restarting the daemon each time and checking after each restart
// that store and kernel agree. It returns the daemon that runs at the end.
func CrashStorm(t testing.TB, w *testworld.World, d *testworld.Daemon, cfg StormConfig) (*testworld.Daemon, StormReport) {
	t.Helper()
	rng := rand.New(rand.NewPCG(cfg.Seed, 7))
	c := NewClient(w.Socket)
	if err := c.CreateNetwork(cfg.Network, cfg.Subnet); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("create network: %v", err)
	}
	rep := StormReport{Interrupted: map[string]int{}}
	seq := 0
	for round := 1; round <= cfg.Kills; round++ {
		loop := &opLoop{c: c, net: cfg.Network, round: round, seq: &seq, rng: rand.New(rand.NewPCG(rng.Uint64(), 1))}
		if err := loop.prepare(); err != nil {
			t.Fatalf("round %d: prepare: %v", round, err)
		}
		done := make(chan error, 1)
		loop.progress = make(chan struct{}, 1024)
		go func() { done <- loop.run() }()
		// Let a random number of operations finish, then kill after a
		// random delay: the kill lands in any phase of any operation.
		for range rng.IntN(8) {
			select {
			case err := <-done:
				t.Fatalf("round %d: the loop stopped before the kill: %v", round, err)
			case <-loop.progress:
			}
		}
		delay := time.Duration(rng.Int64N(int64(cfg.MaxDelay) + 1))
		select {
		case err := <-done:
			t.Fatalf("round %d: the loop stopped before the kill: %v", round, err)
		case <-time.After(delay):
		}
		d.Kill()
		<-done
		rep.Kills++
		rep.Ops += loop.ops
		rep.Interrupted[loop.current]++
		start := time.Now()
		d = w.Start(t)
		rep.Restarts = append(rep.Restarts, time.Since(start))
		counts, leaks := Settled(t, w, c)
		for _, l := range leaks {
			rep.Leaks = append(rep.Leaks, fmt.Sprintf("after kill %d (during %s): %s", round, loop.current, l))
		}
		rep.Final = counts
	}
	return d, rep
}

// opLoop runs API operations until one fails (the daemon was killed).
type opLoop struct {
	c        *Client
	net      string
	round    int
	seq      *int
	rng      *rand.Rand
	live     []string // containers, oldest first
	fresh    []string // containers this loop ran: only these are connected
	joined   []string // containers this loop connected to net
	nets     []string // temporary networks, oldest first
	ops      int
	current  string        // the operation in flight
	progress chan struct{} // one value per completed operation
}

// prepare picks up what earlier rounds left: containers and temporary networks.
func (l *opLoop) prepare() error {
	var ctrs []ctrInfo
	if err := l.c.Get("/containers/json?all=1", &ctrs); err != nil {
		return err
	}
	for i := len(ctrs) - 1; i >= 0; i-- { // the API lists newest first
		l.live = append(l.live, ctrs[i].ID)
	}
	var nets []netInfo
	if err := l.c.Get("/networks", &nets); err != nil {
		return err
	}
	for _, n := range nets {
		if strings.HasPrefix(n.Name, "tmp-") {
			l.nets = append(l.nets, n.Name)
		}
	}
	return nil
}

func (l *opLoop) run() error {
	for {
		if err := l.step(); err != nil {
			return err
		}
	}
}

// step does one operation, chosen so that containers and networks stay few.
func (l *opLoop) step() error {
	*l.seq++
	name := fmt.Sprintf("storm%d", *l.seq)
	var err error
	switch k := l.rng.IntN(10); {
	case k < 3 || len(l.live) == 0:
		l.current = "run"
		var id string
		var publish []string
		if *l.seq%2 == 0 {
			publish = []string{"80/tcp", "53/udp"}
		}
		if id, err = l.c.Run(name, testworld.BusyboxImage, "bridge", publish...); err == nil {
			l.live = append(l.live, id)
			l.fresh = append(l.fresh, id)
		}
	case k < 5 && len(l.joined) < len(l.fresh):
		l.current = "connect"
		id := l.unjoined()
		if err = l.c.Connect(l.net, id); err == nil {
			l.joined = append(l.joined, id)
		}
	case k < 6 && len(l.joined) > 0:
		l.current = "disconnect"
		id := l.joined[0]
		if err = l.c.Disconnect(l.net, id); err == nil {
			l.joined = l.joined[1:]
		}
	case k < 8 && len(l.live) > 2:
		l.current = "rm -f"
		id := l.live[0]
		if err = l.c.Remove(id); err == nil {
			l.live = l.live[1:]
			l.joined = remove(l.joined, id)
			l.fresh = remove(l.fresh, id)
		}
	case k < 9 && len(l.nets) < 3:
		l.current = "network create"
		if err = l.c.CreateNetwork("tmp-"+name, ""); err == nil {
			l.nets = append(l.nets, "tmp-"+name)
		}
	default:
		if len(l.nets) == 0 {
			return nil
		}
		l.current = "network rm"
		if err = l.c.RemoveNetwork(l.nets[0]); err == nil {
			l.nets = l.nets[1:]
		}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", l.current, err)
	}
	l.ops++
	select {
	case l.progress <- struct{}{}:
	default:
	}
	return nil
}

func (l *opLoop) unjoined() string {
	for _, id := range l.fresh {
		if !contains(l.joined, id) {
			return id
		}
	}
	return l.fresh[0]
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

func remove(s []string, x string) []string {
	out := s[:0]
	for _, v := range s {
		if v != x {
			out = append(out, v)
		}
	}
	return out
}

// Cleanup removes every container and temporary network through the API.
func Cleanup(t testing.TB, c *Client) {
	t.Helper()
	var ctrs []ctrInfo
	if err := c.Get("/containers/json?all=1", &ctrs); err != nil {
		t.Fatalf("list containers: %v", err)
	}
	for _, ct := range ctrs {
		if err := c.Remove(ct.ID); err != nil {
			t.Errorf("remove %s: %v", ct.ID[:12], err)
		}
	}
	var nets []netInfo
	if err := c.Get("/networks", &nets); err != nil {
		t.Fatalf("list networks: %v", err)
	}
	for _, n := range nets {
		if strings.HasPrefix(n.Name, "tmp-") {
			if _, err := c.Want(http.MethodDelete, "/networks/"+n.ID, nil, http.StatusNoContent); err != nil {
				t.Errorf("remove network %s: %v", n.Name, err)
			}
		}
	}
}
