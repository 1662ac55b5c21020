package portalloc

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"unsafe"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/network"
	"github.com/berth-net/berth/internal/nstest"
	"github.com/berth-net/berth/internal/sandbox"
	"golang.org/x/sys/unix"
)

// The kernel's structs (include/uapi/linux/io_uring.h) have these sizes.
func TestRingStructSizes(t *testing.T) {
	for name, got := range map[string]uintptr{
		"io_uring_sqe": unsafe.Sizeof(sqe{}), "io_uring_cqe": unsafe.Sizeof(cqe{}), "io_uring_params": unsafe.Sizeof(ringParams{}),
	} {
		want := map[string]uintptr{"io_uring_sqe": 64, "io_uring_cqe": 16, "io_uring_params": 120}[name]
		if got != want {
			t.Errorf("%s: %d bytes, want %d", name, got, want)
		}
	}
}

// requireRing skips where the kernel has no io_uring for berth, except
// under CI=true, where a skipped kernel test is a failure (the CI machines
// have it); elsewhere the io_uring tests must run, so that a broken ring
// cannot hide behind the fallback.
func requireRing(t *testing.T) {
	t.Helper()
	r, err := newRing(4, opSocket, opBind, opClose)
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EOPNOTSUPP) {
		nstest.Unavailable(t, fmt.Sprintf("no io_uring here: %v", err))
	}
	if err != nil {
		t.Fatal(err)
	}
	r.close()
}

// TestRingRunsMoreOpsThanEntries closes ten pipe ends through a ring of
// four entries: three chunks, every result where it belongs.
func TestRingRunsMoreOpsThanEntries(t *testing.T) {
	requireRing(t)
	r, err := newRing(4, opClose)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	var ops []sqe
	var fds []int
	for range 5 {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		for _, fd := range p {
			fds = append(fds, fd)
			ops = append(ops, sqe{opcode: opClose, fd: int32(fd)})
		}
	}
	ops = append(ops, sqe{opcode: opClose, fd: -1}) // the kernel's error comes back in place
	res := make([]int32, len(ops))
	for i := range res {
		res[i] = 1
	}
	if sent, err := r.run(ops, res); err != nil || sent != len(ops) {
		t.Fatalf("run = %d, %v", sent, err)
	}
	for i, fd := range fds {
		if res[i] != 0 {
			t.Errorf("close %d: result %d", fd, res[i])
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); !errors.Is(err, unix.EBADF) {
			t.Errorf("fd %d still open", fd)
		}
	}
	if got := res[len(res)-1]; got != -int32(unix.EBADF) {
		t.Errorf("close(-1) = %d, want -EBADF", got)
	}
}

// modes runs f with the batched (io_uring) and the one-by-one Hold.
func modes(t *testing.T, f func(t *testing.T, a *Allocator, ns string)) {
	for _, m := range []struct {
		name         string
		syscallsOnly bool
	}{{"io_uring", false}, {"syscalls", true}} {
		t.Run(m.name, func(t *testing.T) {
			a, ns := newAllocator(t)
			if !m.syscallsOnly {
				requireRing(t)
			}
			a.syscallsOnly = m.syscallsOnly
			f(t, a, ns)
		})
	}
}

func exactReqs(proto string, ip netip.Addr, first uint16, n int) []network.HostPortRequest {
	out := make([]network.HostPortRequest, n)
	for i := range out {
		p := first + uint16(i)
		out[i] = req(proto, ip, p, p)
	}
	return out
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestHoldManyExact holds 600 exact ports (enough for a ring on each of
// two threads): each is bound to its own port, keeps host processes out,
// drops UDP datagrams, and Release closes every socket.
func TestHoldManyExact(t *testing.T) {
	modes(t, func(t *testing.T, a *Allocator, ns string) {
		fdsBefore := openFDs(t)
		reqs := append(exactReqs("tcp", anyIP, 30000, 300), exactReqs("udp", localIP, 31000, 300)...)
		got, err := a.Hold(reqs)
		if err != nil {
			t.Fatal(err)
		}
		// 600 ports are work for two threads, where the runtime runs two
		// (not under -test.cpu=1).
		threads := min(runtime.GOMAXPROCS(0), 2)
		if want := map[bool]int{false: threads, true: 0}[a.syscallsOnly]; len(a.rings) != want {
			t.Errorf("Hold made %d rings, want %d (one per thread)", len(a.rings), want)
		}
		for i, hp := range got {
			want := network.HostPort{Proto: reqs[i].Proto, HostIP: reqs[i].HostIP, Port: reqs[i].Start}
			if hp != want {
				t.Fatalf("port %d: %v, want %v", i, hp, want)
			}
			checkSocket(t, a.held[hp], hp)
		}
		for _, tc := range []struct{ proto, addr string }{
			{"tcp", "0.0.0.0:30000"}, {"tcp", "127.0.0.1:30150"}, {"tcp", "0.0.0.0:30299"}, {"udp", "127.0.0.1:31000"}, {"udp", "0.0.0.0:31299"},
		} {
			if c, err := listen(t, ns, tc.proto, tc.addr); err == nil {
				c()
				t.Errorf("a host process could bind %s %s while berth holds it", tc.proto, tc.addr)
			}
		}
		checkDropsDatagrams(t, ns, a.held[got[len(got)-1]], "127.0.0.1:31299")
		if err := a.Release(got); err != nil {
			t.Fatal(err)
		}
		if a.Held() != 0 {
			t.Errorf("held %d ports after Release", a.Held())
		}
		if n := openFDs(t); n != fdsBefore+len(a.rings) {
			t.Errorf("%d fds open after Release, %d before Hold and %d rings", n, fdsBefore, len(a.rings))
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if n := openFDs(t); n != fdsBefore {
			t.Errorf("%d fds open after Close, %d before Hold", n, fdsBefore)
		}
		c, err := listen(t, ns, "tcp", "0.0.0.0:30150")
		if err != nil {
			t.Errorf("after Release, listen on 30150: %v", err)
		}
		c()
	})
}

// checkSocket requires fd to be a socket of hp's protocol bound to hp.
func checkSocket(t *testing.T, fd int, hp network.HostPort) {
	t.Helper()
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatalf("%v: getsockname: %v", hp, err)
	}
	in4 := sa.(*unix.SockaddrInet4)
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		t.Fatal(err)
	}
	wantTyp := map[string]int{"tcp": unix.SOCK_STREAM, "udp": unix.SOCK_DGRAM}[hp.Proto]
	if in4.Port != int(hp.Port) || netip.AddrFrom4(in4.Addr) != hp.HostIP || typ != wantTyp {
		t.Fatalf("%v: socket type %d bound to %v:%d", hp, typ, netip.AddrFrom4(in4.Addr), in4.Port)
	}
}

// checkDropsDatagrams sends a datagram to addr, held by fd, and requires
// that nothing is queued on fd: the drop filter is attached.
func checkDropsDatagrams(t *testing.T, ns string, fd int, addr string) {
	t.Helper()
	err := sandbox.Do(ns, func() error {
		c, err := net.Dial("udp4", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("not for anyone"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Loopback delivers before the write returns; a socket without the
	// filter would now hold the datagram.
	n, err := unix.IoctlGetInt(fd, unix.SIOCINQ)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d bytes queued on the held UDP socket %s, want the datagram dropped", n, addr)
	}
}

// TestHoldFewExact: a container's usual one or two ports take the same
// way as 10,000, and Release closes their sockets.
func TestHoldFewExact(t *testing.T) {
	modes(t, func(t *testing.T, a *Allocator, ns string) {
		got, err := a.Hold([]network.HostPortRequest{req("tcp", anyIP, 8080, 8080), req("udp", anyIP, 5353, 5353)})
		if err != nil {
			t.Fatal(err)
		}
		if !a.syscallsOnly && len(a.rings) != 1 {
			t.Errorf("Hold made %d rings, want 1", len(a.rings))
		}
		for _, hp := range got {
			checkSocket(t, a.held[hp], hp)
		}
		checkDropsDatagrams(t, ns, a.held[got[1]], "127.0.0.1:5353")
		if c, err := listen(t, ns, "tcp", "127.0.0.1:8080"); err == nil {
			c()
			t.Error("a host process could bind tcp 127.0.0.1:8080 under a held 0.0.0.0:8080")
		}
		fd := a.held[got[0]]
		if err := a.Release(got); err != nil {
			t.Fatal(err)
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); !errors.Is(err, unix.EBADF) {
			t.Errorf("the socket of %v is still open after Release", got[0])
		}
	})
}

// TestHoldManyExactAllOrNothing: one port of 200 that a host process
// listens on fails the whole Hold with Docker's words for that port, and
// every socket the Hold made is closed.
func TestHoldManyExactAllOrNothing(t *testing.T) {
	modes(t, func(t *testing.T, a *Allocator, ns string) {
		stop, err := listen(t, ns, "tcp", "0.0.0.0:30100")
		if err != nil {
			t.Fatal(err)
		}
		defer stop()
		fdsBefore := openFDs(t)
		_, err = a.Hold(exactReqs("tcp", anyIP, 30000, 200))
		if !errdefs.Is(err, errdefs.KindConflict) {
			t.Fatalf("Hold = %v, want a conflict", err)
		}
		if want := "failed to bind host port for 0.0.0.0:30100:0/tcp: address already in use"; err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
		if a.Held() != 0 {
			t.Errorf("held %d ports after a failed Hold", a.Held())
		}
		if n := openFDs(t); n != fdsBefore+len(a.rings) {
			t.Errorf("%d fds open after the failed Hold, %d before and %d rings", n, fdsBefore, len(a.rings))
		}
		for _, p := range []int{30000, 30099, 30199} {
			c, err := listen(t, ns, "tcp", fmt.Sprintf("0.0.0.0:%d", p))
			if err != nil {
				t.Errorf("the failed Hold kept tcp %d: %v", p, err)
			}
			c()
		}
	})
}

// TestRingThatFailsIsDropped: when io_uring_enter itself fails (a seccomp
// profile that allows io_uring_setup but not enter), a Release still
// frees its ports (the closes the kernel did not take are made one by
// one) and a Hold still binds them, without the ring from then on. Every
// Hold failed with the enter's error before, and a Release left its
// ports bound for good.
func TestRingThatFailsIsDropped(t *testing.T) {
	requireRing(t)
	a, ns := newAllocator(t)
	reqs := exactReqs("tcp", anyIP, 21000, 40)
	if _, err := a.Hold(reqs); err != nil {
		t.Fatal(err)
	}
	if len(a.rings) == 0 {
		t.Fatal("the Hold made no ring")
	}
	defer func(e func(int, uint32, uint32, uintptr) unix.Errno) { enter = e }(enter)
	enter = func(int, uint32, uint32, uintptr) unix.Errno { return unix.EPERM }
	var held []network.HostPort
	for _, r := range reqs {
		held = append(held, network.HostPort{Proto: r.Proto, HostIP: r.HostIP, Port: r.Start})
	}
	if err := a.Release(held); err != nil {
		t.Errorf("Release with io_uring_enter refused: %v", err)
	}
	if c, err := listen(t, ns, "tcp", "0.0.0.0:21005"); err != nil {
		t.Errorf("a released port is still bound: %v", err)
	} else {
		c()
	}
	if a.rings != nil || a.noRings == nil {
		t.Errorf("the ring that failed is still used: %d rings, noRings %v", len(a.rings), a.noRings)
	}
	// A fresh allocator whose first Hold meets the refusal.
	b, ns2 := newAllocator(t)
	if _, err := b.ringsFor(1)[0].run([]sqe{{opcode: opClose, fd: -1}}, make([]int32, 1)); err == nil {
		t.Fatal("a ring ran with io_uring_enter refused")
	}
	got, err := b.Hold(reqs)
	if err != nil {
		t.Fatalf("Hold with io_uring_enter refused: %v", err)
	}
	if len(got) != len(reqs) || b.Held() != len(reqs) {
		t.Errorf("Hold gave %d ports, holds %d, want %d", len(got), b.Held(), len(reqs))
	}
	if c, err := listen(t, ns2, "tcp", "0.0.0.0:21005"); err == nil {
		c()
		t.Error("a host process could listen on a held port")
	}
}
