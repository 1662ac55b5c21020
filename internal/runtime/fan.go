package runtime

import (
	"bytes"
	"io"
	"slices"
	"sync"
)

// Attach reads a container's output as it comes, not from its log: the
// log holds a line until its newline (a prompt without one would not
// show) and may rotate a file away before a follower reads it (QA round
// 28: an attached `seq 1 300000` with max-size=10k printed 2,131 lines).
// As moby's attach (container/stream), the attached get the raw bytes
// the container wrote, and a client that does not read holds the
// container back.

// fanSub is one attached client of a run's output.
type fanSub interface {
	// send hands it a chunk of stream (1 stdout, 2 stderr); an error
	// drops it.
	send(stream byte, p []byte) error
	// end says the run's output is over (or the start failed).
	end()
}

// outputFan hands one run's output to the attached. What comes before
// the run is known to have started (runc may still fail, and what it
// writes then is not the container's) is held until open.
//
// Deliveries are serialised by deliver, which is held while a client is
// written to (a client that does not read holds the copier, and so the
// container, back, as in Docker); mu guards the rest and is never held
// while writing, so attaching and detaching never wait for a client.
type outputFan struct {
	deliver sync.Mutex
	mu      sync.Mutex
	subs    []fanSub
	held    []heldChunk
	opened  bool
	ended   bool
}

type heldChunk struct {
	stream byte
	p      []byte
}

// add attaches s, unless the fan has ended (false: the run is over,
// s waits for the next).
func (f *outputFan) add(s fanSub) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ended {
		return false
	}
	f.subs = append(f.subs, s)
	return true
}

// remove detaches s (its client went away) without ending it.
func (f *outputFan) remove(s fanSub) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subs = dropSub(f.subs, s)
}

func dropSub(subs []fanSub, s fanSub) []fanSub {
	for i, o := range subs {
		if o == s {
			return append(subs[:i], subs[i+1:]...)
		}
	}
	return subs
}

// write passes p on to every attached client (held until open). It is
// called with at most one chunk of a read, so what is held is bounded by
// the copier's own hold (logGate).
func (f *outputFan) write(stream byte, p []byte) {
	f.deliver.Lock()
	defer f.deliver.Unlock()
	f.mu.Lock()
	if f.ended {
		f.mu.Unlock()
		return
	}
	if !f.opened {
		f.held = append(f.held, heldChunk{stream, bytes.Clone(p)})
		f.mu.Unlock()
		return
	}
	subs := slices.Clone(f.subs)
	f.mu.Unlock()
	f.send(subs, stream, p)
}

// send writes p to subs (deliver held); a client that fails is dropped.
func (f *outputFan) send(subs []fanSub, stream byte, p []byte) {
	for _, s := range subs {
		if err := s.send(stream, p); err != nil {
			s.end()
			f.remove(s)
		}
	}
}

// open passes what was held on (keep) or drops it and ends the attached
// (the start failed); held chunks go first, as later ones wait for
// deliver.
func (f *outputFan) open(keep bool) {
	f.deliver.Lock()
	defer f.deliver.Unlock()
	f.mu.Lock()
	held, subs := f.held, slices.Clone(f.subs)
	f.held, f.opened = nil, true
	f.mu.Unlock()
	if !keep {
		f.end()
		return
	}
	for _, c := range held {
		f.send(subs, c.stream, c.p)
	}
}

// end ends every attached client: the run's output is over.
func (f *outputFan) end() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ended {
		return
	}
	f.ended = true
	for _, s := range f.subs {
		s.end()
	}
	f.subs, f.held = nil, nil
}

// writerSub is an attached client in this process: its writers.
type writerSub struct {
	stdout, stderr io.Writer
	done           chan struct{}
	once           sync.Once
}

func newWriterSub(stdout, stderr io.Writer) *writerSub {
	return &writerSub{stdout: stdout, stderr: stderr, done: make(chan struct{})}
}

func (w *writerSub) send(stream byte, p []byte) error {
	out := w.stdout
	if stream == 2 {
		out = w.stderr
	}
	if out == nil {
		return nil
	}
	_, err := out.Write(p)
	return err
}

func (w *writerSub) end() { w.once.Do(func() { close(w.done) }) }
