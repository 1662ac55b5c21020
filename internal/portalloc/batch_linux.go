package portalloc

import (
	"encoding/binary"
	"errors"
	"math"
	"runtime"
	"unsafe"

	"github.com/berth-net/berth/internal/network"
	"golang.org/x/sys/unix"
)

// ringsFor returns n rings, made now if need be, or nil where io_uring
// cannot be used: then Hold binds one port at a time. The caller holds a.mu.
func (a *Allocator) ringsFor(n int) []*ring {
	if a.syscallsOnly || a.noRings != nil {
		return nil
	}
	for len(a.rings) < n {
		r, err := newRing(maxRingEntries, opSocket, opBind, opClose)
		if err != nil {
			if len(a.rings) == 0 && isUnsupported(err) {
				a.noRings = err
				a.log.Info("holding host ports without io_uring, a few system calls each", "reason", err)
			}
			return nil
		}
		a.rings = append(a.rings, r)
	}
	return a.rings[:n]
}

// dropRings closes the rings after a failure of a ring itself (err):
// their queues cannot be trusted again. A refusal that will last (a
// seccomp profile that denies io_uring_enter) makes every later call bind
// its ports one by one; a passing one (no memory) lets the next Hold make
// new rings. The caller holds a.mu.
func (a *Allocator) dropRings(err error) {
	for _, r := range a.rings {
		r.close()
	}
	a.rings = nil
	if isUnsupported(err) {
		a.noRings = err
		a.log.Warn("io_uring refused: holding host ports without it from now on, a few system calls each", "err", err)
		return
	}
	a.log.Warn("io_uring failed: this call holds its ports one by one", "err", err)
}

// isUnsupported says whether err means that this kernel, or its settings
// (kernel.io_uring_disabled, a seccomp profile), will never give berth a
// ring; other errors (no memory) may pass.
func isUnsupported(err error) bool {
	for _, e := range []error{unix.ENOSYS, unix.EPERM, unix.EACCES, unix.EINVAL, unix.EOPNOTSUPP} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// holdExact binds the exact ports at idx (Start == End) through r, or one
// by one when r is nil: every socket, then every UDP socket's drop filter,
// then every bind, each step a few io_uring_enter calls. Each socket made
// is written to fds at once, so that Hold closes it if a later step fails;
// the error is the first request's in idx order, as holdEach would report.
func holdExact(r *ring, reqs []network.HostPortRequest, idx []int, out []network.HostPort, fds []int) error {
	if r == nil {
		return holdEach(reqs, idx, out, fds, nil)
	}
	typs := make([]int, len(idx))
	for k, i := range idx {
		typ, err := socketType(reqs[i])
		if err != nil {
			return err
		}
		typs[k] = typ
	}
	ops := make([]sqe, len(idx))
	res := make([]int32, len(idx))
	for k, typ := range typs {
		ops[k] = sqe{opcode: opSocket, fd: unix.AF_INET, off: uint64(typ | unix.SOCK_CLOEXEC | unix.SOCK_NONBLOCK)}
		res[k] = math.MinInt32 // not run: neither an fd nor an errno
	}
	_, first := r.run(ops, res)
	for k, fd := range res {
		if fd >= 0 {
			fds[idx[k]] = int(fd)
		} else if rq := reqs[idx[k]]; first == nil && fd != math.MinInt32 {
			first = socketError(rq, unix.Errno(-fd))
		}
	}
	if first != nil {
		return first
	}
	if err := r.attachDropFilters(idx, typs, fds); err != nil {
		return err
	}
	return r.bindAll(reqs, idx, out, fds)
}

// attachDropFilters gives every UDP socket of idx the filter that drops all
// datagrams (see bindPort), through the ring where the kernel can set
// socket options that way (Linux 6.7) and by setsockopt where not.
func (r *ring) attachDropFilters(idx, typs, fds []int) error {
	var udp []int // the fds
	for k, typ := range typs {
		if typ == unix.SOCK_DGRAM {
			udp = append(udp, fds[idx[k]])
		}
	}
	if len(udp) == 0 {
		return nil
	}
	res := make([]int32, len(udp))
	for i := range res {
		res[i] = -int32(unix.EOPNOTSUPP)
	}
	if r.ops[opUringCmd] {
		ops := make([]sqe, len(udp))
		for i, fd := range udp {
			ops[i] = sqe{
				opcode: opUringCmd, fd: int32(fd), off: cmdSetsockopt,
				addr:    unix.SOL_SOCKET | unix.SO_ATTACH_FILTER<<32,
				fileIdx: uint32(unsafe.Sizeof(dropAll)),
				addr3:   uint64(uintptr(unsafe.Pointer(&dropAll))), // a package variable: it never moves
			}
		}
		if _, err := r.run(ops, res); err != nil {
			return err
		}
	}
	for i, fd := range udp {
		if res[i] == 0 {
			continue
		}
		if err := attachDropFilter(fd); err != nil {
			return err
		}
	}
	return nil
}

// bindAll binds the socket of each request of idx to its port.
func (r *ring) bindAll(reqs []network.HostPortRequest, idx []int, out []network.HostPort, fds []int) error {
	addrs := make([]unix.RawSockaddrInet4, len(idx))
	var pin runtime.Pinner
	pin.Pin(&addrs[0])
	defer pin.Unpin()
	ops := make([]sqe, len(idx))
	for k, i := range idx {
		rq := reqs[i]
		addrs[k] = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: anyIfInvalid(rq.HostIP).As4()}
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&addrs[k].Port))[:], rq.Start)
		ops[k] = sqe{opcode: opBind, fd: int32(fds[i]), addr: uint64(uintptr(unsafe.Pointer(&addrs[k]))), off: unix.SizeofSockaddrInet4}
	}
	res := make([]int32, len(idx))
	if _, err := r.run(ops, res); err != nil {
		return err
	}
	for k, i := range idx {
		rq := reqs[i]
		ip := anyIfInvalid(rq.HostIP)
		if res[k] == -int32(unix.EADDRINUSE) && rq.Proto == "tcp" {
			// Bound without SO_REUSEADDR, which the batch cannot set: a
			// host service's TIME_WAIT sockets refuse it, Docker's not.
			if err := bindReusing(fds[i], &unix.SockaddrInet4{Port: int(rq.Start), Addr: ip.As4()}); err == nil {
				res[k] = 0
			}
		}
		if res[k] < 0 {
			return &bindFailure{i: i, port: rq.Start, err: unix.Errno(-res[k])}
		}
		out[i] = network.HostPort{Proto: rq.Proto, HostIP: ip, Port: rq.Start}
	}
	return nil
}

// closeAll closes fds, through a ring where Hold made one, and returns
// each one's error (nil for most).
func (a *Allocator) closeAll(fds []int) []error {
	errs := make([]error, len(fds))
	rest := fds
	if len(a.rings) > 0 {
		var rerr error
		if rest, rerr = a.rings[0].closeAll(fds, errs); rerr != nil {
			a.dropRings(rerr)
		}
	}
	for i, fd := range rest {
		errs[len(fds)-len(rest)+i] = unix.Close(fd)
	}
	return errs
}

// closeAll closes fds through r, writing their errors into errs, and
// returns the tail of fds it did not close (the kernel did not take
// them), with the ring's failure if it failed. An fd whose close is in
// doubt after a failure of the ring itself is left alone, not closed
// twice: its number may already belong to a new file.
func (r *ring) closeAll(fds []int, errs []error) ([]int, error) {
	ops := make([]sqe, len(fds))
	res := make([]int32, len(fds))
	const unknown = 1 // a close returns 0 or -errno
	for i, fd := range fds {
		ops[i] = sqe{opcode: opClose, fd: int32(fd)}
		res[i] = unknown
	}
	sent, err := r.run(ops, res)
	for i, v := range res[:sent] {
		switch {
		case v == unknown:
			errs[i] = err
		case v < 0:
			errs[i] = unix.Errno(-v)
		}
	}
	return fds[sent:], err
}
