package portalloc

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A ring is the least of io_uring that Hold needs: it issues many socket,
// setsockopt, bind and close calls with a few io_uring_enter calls. On the
// VMs berth is measured on, a system call's entry and exit cost 1–3.5 µs
// (getppid in a loop), as much as a socket's creation or bind, and 10,000
// ports took 20,000 of them: through a ring they take half the time
// (BenchmarkHold). The operations run inline in io_uring_enter, on the
// calling thread and so in its network namespace.
//
// An Allocator keeps its rings (setting one up costs some 100 µs) and uses
// each from one goroutine at a time, on whatever thread is in the right
// namespace: the operations run in the context of the thread that submits
// them, not of the one that made the ring. Where io_uring is missing or
// refused (an old kernel, kernel.io_uring_disabled, a seccomp profile),
// newRing fails and the caller makes the system calls one by one.
type ring struct {
	fd      int
	entries uint32
	ops     [256]bool // the operations the kernel supports
	sqRing  []byte
	cqRing  []byte
	sqeMem  []byte

	sqHead, sqTail, sqMask *uint32
	sqArray                []uint32
	sqes                   []sqe
	cqHead, cqTail, cqMask *uint32
	cqes                   []cqe
}

// sqe is struct io_uring_sqe (include/uapi/linux/io_uring.h), the fields
// named for the operations used here.
type sqe struct {
	opcode   uint8
	flags    uint8
	ioprio   uint16
	fd       int32
	off      uint64 // SOCKET: type; BIND: address length; URING_CMD: cmd_op
	addr     uint64 // BIND: the address; URING_CMD: level (low 32 bits), optname
	len      uint32 // SOCKET: protocol
	opFlags  uint32
	userData uint64
	bufIndex uint16
	pers     uint16
	fileIdx  uint32 // URING_CMD: optlen
	addr3    uint64 // URING_CMD: optval
	_        uint64
}

// cqe is struct io_uring_cqe.
type cqe struct {
	userData uint64
	res      int32
	flags    uint32
}

// struct io_uring_params, with its struct io_sqring_offsets and io_cqring_offsets.
type ringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	_                                                                      [3]uint32
	sqOff                                                                  struct {
		head, tail, ringMask, ringEntries, flags, dropped, array, _ uint32
		_                                                           uint64
	}
	cqOff struct {
		head, tail, ringMask, ringEntries, overflow, cqes, flags, _ uint32
		_                                                           uint64
	}
}

const (
	opClose    = 19 // IORING_OP_CLOSE, Linux 5.6
	opSocket   = 45 // IORING_OP_SOCKET, Linux 5.19
	opUringCmd = 46 // IORING_OP_URING_CMD; SOCKET_URING_OP_SETSOCKOPT since Linux 6.7
	opBind     = 56 // IORING_OP_BIND, Linux 6.11

	cmdSetsockopt = 3 // SOCKET_URING_OP_SETSOCKOPT

	setupSubmitAll   = 1 << 7 // IORING_SETUP_SUBMIT_ALL: a failed entry does not stop the rest
	enterGetEvents   = 1      // IORING_ENTER_GETEVENTS
	registerProbe    = 8      // IORING_REGISTER_PROBE
	probeOpSupported = 1      // IO_URING_OP_SUPPORTED
	offSQRing        = 0
	offCQRing        = 0x8000000
	offSQEs          = 0x10000000
)

// maxRingEntries bounds a ring's submission queue: 1,024 entries take
// 64 KiB and turn 10,000 operations into ten io_uring_enter calls.
const maxRingEntries = 1024

// newRing sets up a ring of about n entries (at most maxRingEntries) that
// supports every operation of ops, or fails.
func newRing(n int, ops ...uint8) (_ *ring, err error) {
	var p ringParams
	p.flags = setupSubmitAll
	entries := uint32(min(max(n, 1), maxRingEntries))
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		return nil, fmt.Errorf("io_uring_setup: %w", errno)
	}
	r := &ring{fd: int(fd), entries: p.sqEntries}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	if err := r.probe(); err != nil {
		return nil, err
	}
	for _, op := range ops {
		if !r.ops[op] {
			return nil, fmt.Errorf("io_uring operation %d: %w", op, unix.EOPNOTSUPP)
		}
	}
	mmap := func(off int64, size uint32) ([]byte, error) {
		return unix.Mmap(r.fd, off, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	}
	if r.sqRing, err = mmap(offSQRing, p.sqOff.array+p.sqEntries*4); err != nil {
		return nil, fmt.Errorf("map io_uring submission queue: %w", err)
	}
	if r.cqRing, err = mmap(offCQRing, p.cqOff.cqes+p.cqEntries*uint32(unsafe.Sizeof(cqe{}))); err != nil {
		return nil, fmt.Errorf("map io_uring completion queue: %w", err)
	}
	if r.sqeMem, err = mmap(offSQEs, p.sqEntries*uint32(unsafe.Sizeof(sqe{}))); err != nil {
		return nil, fmt.Errorf("map io_uring entries: %w", err)
	}
	sq, cq := unsafe.Pointer(&r.sqRing[0]), unsafe.Pointer(&r.cqRing[0])
	r.sqHead = (*uint32)(unsafe.Add(sq, p.sqOff.head))
	r.sqTail = (*uint32)(unsafe.Add(sq, p.sqOff.tail))
	r.sqMask = (*uint32)(unsafe.Add(sq, p.sqOff.ringMask))
	r.sqArray = unsafe.Slice((*uint32)(unsafe.Add(sq, p.sqOff.array)), p.sqEntries)
	r.sqes = unsafe.Slice((*sqe)(unsafe.Pointer(&r.sqeMem[0])), p.sqEntries)
	r.cqHead = (*uint32)(unsafe.Add(cq, p.cqOff.head))
	r.cqTail = (*uint32)(unsafe.Add(cq, p.cqOff.tail))
	r.cqMask = (*uint32)(unsafe.Add(cq, p.cqOff.ringMask))
	r.cqes = unsafe.Slice((*cqe)(unsafe.Add(cq, p.cqOff.cqes)), p.cqEntries)
	return r, nil
}

// probe learns which operations the kernel supports.
func (r *ring) probe() error {
	var probe struct {
		lastOp, opsLen uint8
		_              uint16
		_              [3]uint32
		ops            [256]struct {
			op, _ uint8
			flags uint16
			_     uint32
		}
	}
	_, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), registerProbe, uintptr(unsafe.Pointer(&probe)), 256, 0, 0)
	if errno != 0 {
		return fmt.Errorf("io_uring probe: %w", errno)
	}
	for _, p := range probe.ops[:probe.opsLen] {
		r.ops[p.op] = p.flags&probeOpSupported != 0
	}
	return nil
}

func (r *ring) close() {
	for _, m := range [][]byte{r.sqeMem, r.cqRing, r.sqRing} {
		if m != nil {
			unix.Munmap(m)
		}
	}
	unix.Close(r.fd)
}

// ringError is a failure of the ring itself (io_uring_enter refused: a
// seccomp profile that allows io_uring_setup but not enter, no memory),
// not of an operation. The ring is not used again (Allocator.dropRings).
type ringError struct{ err error }

func (e *ringError) Error() string { return e.err.Error() }
func (e *ringError) Unwrap() error { return e.err }

// enter is io_uring_enter (a test makes it fail).
var enter = func(fd int, toSubmit, minComplete uint32, flags uintptr) unix.Errno {
	_, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(fd), uintptr(toSubmit), uintptr(minComplete), flags, 0, 0)
	return errno
}

// run issues ops and writes each one's result (a value, or -errno) into
// res. Memory the entries point to must stay put until run returns. On an
// error (a *ringError), sent says how many ops the kernel took: the
// results of the last chunk of them may be missing; the ops after them
// were not run, and are off the queue (the next run would have submitted
// them again, and written their results past the end of its res).
func (r *ring) run(ops []sqe, res []int32) (sent int, err error) {
	// Completions that the kernel finishes later are delivered to the
	// submitting thread: stay on it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for start := 0; start < len(ops); start += int(r.entries) {
		chunk := ops[start:min(start+int(r.entries), len(ops))]
		tail := atomic.LoadUint32(r.sqTail)
		for i := range chunk {
			slot := (tail + uint32(i)) & *r.sqMask
			r.sqes[slot] = chunk[i]
			r.sqes[slot].userData = uint64(start + i)
			r.sqArray[slot] = slot
		}
		atomic.StoreUint32(r.sqTail, tail+uint32(len(chunk)))
		if err := r.submitAndWait(len(chunk), res); err != nil {
			head := atomic.LoadUint32(r.sqHead)
			atomic.StoreUint32(r.sqTail, head) // take back what the kernel did not
			return start + int(head-tail), &ringError{err}
		}
	}
	return len(ops), nil
}

// submitAndWait submits what the queue holds and reaps n completions.
func (r *ring) submitAndWait(n int, res []int32) error {
	for n > 0 {
		pending := atomic.LoadUint32(r.sqTail) - atomic.LoadUint32(r.sqHead)
		errno := enter(r.fd, pending, uint32(n), enterGetEvents)
		if errno != 0 && !errors.Is(errno, unix.EINTR) {
			return fmt.Errorf("io_uring_enter: %w", errno)
		}
		head, tail := atomic.LoadUint32(r.cqHead), atomic.LoadUint32(r.cqTail)
		for ; head != tail; head++ {
			c := &r.cqes[head&*r.cqMask]
			res[c.userData] = c.res
			n--
		}
		atomic.StoreUint32(r.cqHead, head)
	}
	return nil
}
