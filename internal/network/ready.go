package network

import (
	"time"

	"github.com/berth-net/berth/internal/store"
)

// readyDelay bounds how long an endpoint's "ready" mark waits in memory
// for a record to ride on before it is journaled on its own.
const readyDelay = 10 * time.Millisecond

// readyMarks are the endpoints made ready whose records still say
// "creating". Writing the mark costs a journal append of its own, on the
// connect's path, after the kernel work; nothing needs it on disk at once:
// a restart finishes a "creating" endpoint whose sandbox and network are
// still there (reconcileEndpoints) — it re-runs the idempotent Join and
// marks it — so a lost mark costs the restart a little work and never the
// endpoint. So the mark goes into the next record the controller writes
// about endpoints (the next connect's intent, a disconnect's, ...) or,
// after readyDelay, a record of its own. Endpoints with published ports are
// marked at once: a restart re-holds and re-publishes the ports of ready
// endpoints only.
type readyMarks struct {
	pending map[string]*Endpoint // guarded by Controller.mu
	timer   *time.Timer
	delay   time.Duration // readyDelay unless a test sets it
}

// markReadyLocked makes ep ready in memory and queues its mark.
func (c *Controller) markReadyLocked(ep *Endpoint) error {
	ep.State = EndpointReady
	if len(ep.Ports) > 0 {
		return c.noteEndpointLocked(ep)
	}
	c.names.update(ep, c.networks[ep.NetworkID])
	if c.ready.pending == nil {
		c.ready.pending = map[string]*Endpoint{}
	}
	c.ready.pending[ep.ID] = ep
	delay := c.ready.delay
	if delay == 0 {
		delay = readyDelay
	}
	if c.ready.timer == nil {
		c.ready.timer = time.AfterFunc(delay, c.flushReady)
	} else if len(c.ready.pending) == 1 {
		c.ready.timer.Reset(delay)
	}
	return nil
}

// putReadyLocked adds the queued marks to tx: those of endpoints still
// recorded and still ready (one a Leave has begun to remove is recorded
// by the Leave).
func (c *Controller) putReadyLocked(tx store.Tx) error {
	for id, ep := range c.ready.pending {
		if c.endpoints[id] != ep || ep.State != EndpointReady {
			continue
		}
		if err := tx.Put(store.BucketEndpoints, id, ep); err != nil {
			return err
		}
	}
	return nil
}

// readyWrittenLocked forgets the queued marks once a record carried them.
func (c *Controller) readyWrittenLocked() {
	clear(c.ready.pending)
}

// flushReady journals the queued marks in a record of their own.
func (c *Controller) flushReady() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.ready.pending) == 0 {
		return
	}
	if err := c.cfg.Store.Note(c.putReadyLocked); err != nil {
		// The next record tries again; a restart finishes the endpoints.
		c.log.Warn("record ready endpoints", "count", len(c.ready.pending), "err", err)
		return
	}
	c.readyWrittenLocked()
}

// Close stops the ready marks' timer and writes what is queued; the
// controller must not be used afterwards. The daemon calls it before it
// closes the store.
func (c *Controller) Close() {
	c.mu.Lock()
	if c.ready.timer != nil {
		c.ready.timer.Stop()
	}
	c.mu.Unlock()
	c.flushReady()
}
