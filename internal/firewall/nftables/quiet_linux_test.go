package nftables

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	nftlib "github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/nstest"
	"github.com/berth-net/berth/internal/sandbox"
)

// TestQuietBatchError: an error of a message that asks for no
// acknowledgement still comes back, named by its errno, and the batch is
// all or nothing: its table, made before the failing rule, is not there
// after. A good batch then succeeds on the same socket, its one
// acknowledgement read and nothing of the failed batch's left to read.
func TestQuietBatchError(t *testing.T) {
	ns := nstest.New(t)
	t1 := &nftlib.Table{Family: nftlib.TableFamilyIPv4, Name: "quiet"}
	missing := &nftlib.Chain{Name: "missing", Table: t1}
	policy := nftlib.ChainPolicyAccept
	base := &nftlib.Chain{Name: "out", Table: t1, Type: nftlib.ChainTypeFilter,
		Hooknum: nftlib.ChainHookOutput, Priority: nftlib.ChainPriorityFilter, Policy: &policy}
	accept := []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}
	err := sandbox.Do(ns, func() error {
		sock, err := openQuietSocket()
		if err != nil {
			return err
		}
		defer sock.close()
		var bad quietBatch
		bad.newTable(t1, true)
		bad.appendRule(missing, accept) // no such chain: ENOENT
		bad.newChain(base)
		bad.appendRule(base, accept)
		if err := sock.send(&bad); !errors.Is(err, unix.ENOENT) {
			t.Errorf("a batch with a rule in a missing chain: %v, want ENOENT", err)
		}
		var good quietBatch
		good.newTable(t1, true)
		good.newChain(base)
		good.appendRule(base, accept)
		if err := sock.send(&good); err != nil {
			t.Errorf("a good batch after a failed one: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := output(t, ns, "nft", "list", "table", "ip", "quiet")
	if want := "type filter hook output priority filter; policy accept;\n\t\taccept\n"; !strings.Contains(got, want) {
		t.Errorf("table after the good batch:\n%s\nwant it to hold:\n%s", got, want)
	}
}

// TestQuietBatchBaseChainsOnly: a chain without a hook is refused while
// the batch is encoded, and nothing is sent.
func TestQuietBatchBaseChainsOnly(t *testing.T) {
	var b quietBatch
	b.newChain(&nftlib.Chain{Name: "regular", Table: &nftlib.Table{Name: "t"}})
	if b.err == nil || len(b.msgs) != 0 {
		t.Errorf("a regular chain: err %v, %d messages", b.err, len(b.msgs))
	}
	if err := (&quietSocket{fd: -1}).send(&b); err == nil {
		t.Error("sent a batch that failed to encode")
	}
}

// TestParseReplies reads an acknowledgement and an error out of one
// datagram, skips other messages, and refuses a length that runs past
// the end.
func TestParseReplies(t *testing.T) {
	msg := func(typ uint16, seq uint32, payload ...byte) []byte {
		b := make([]byte, unix.NLMSG_HDRLEN, unix.NLMSG_HDRLEN+len(payload)+3)
		binary.NativeEndian.PutUint32(b[0:], uint32(unix.NLMSG_HDRLEN+len(payload)))
		binary.NativeEndian.PutUint16(b[4:], typ)
		binary.NativeEndian.PutUint32(b[8:], seq)
		b = append(b, payload...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	code := func(errno int32) []byte {
		return binary.NativeEndian.AppendUint32(nil, uint32(errno))
	}
	var b []byte
	b = append(b, msg(unix.NLMSG_ERROR, 3, code(-int32(unix.ENOENT))...)...)
	b = append(b, msg(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_NEWRULE, 4, 1, 2, 3)...)
	b = append(b, msg(unix.NLMSG_ERROR, 5, code(0)...)...)
	got, err := parseReplies(b)
	if err != nil {
		t.Fatal(err)
	}
	want := []reply{{seq: 3, errno: unix.ENOENT}, {seq: 5}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("parseReplies = %v, want %v", got, want)
	}
	long := msg(unix.NLMSG_ERROR, 1, code(0)...)
	binary.NativeEndian.PutUint32(long[0:], 64)
	if _, err := parseReplies(long); err == nil {
		t.Error("a length past the datagram's end was taken")
	}
}

// TestQuietReplies feeds the reply loop datagrams as the kernel would
// queue them (through a socket pair, so without the kernel's help): it
// never waits for more than is queued. The kernel's giving up on a batch
// for want of memory names the message after its beginning and sends
// nothing more, which must come back as the error at once (it waited out
// a 5 s timeout for an acknowledgement that never came); nothing at all
// is an error; a stale reply of an earlier batch is not this one's.
func TestQuietReplies(t *testing.T) {
	msg := func(seq uint32, errno unix.Errno) []byte {
		b := make([]byte, unix.NLMSG_HDRLEN+4)
		binary.NativeEndian.PutUint32(b[0:], uint32(len(b)))
		binary.NativeEndian.PutUint16(b[4:], unix.NLMSG_ERROR)
		binary.NativeEndian.PutUint32(b[8:], seq)
		binary.NativeEndian.PutUint32(b[unix.NLMSG_HDRLEN:], uint32(-int32(errno)))
		return b
	}
	for _, tc := range []struct {
		name  string
		queue [][]byte
		want  func(error) bool
	}{
		{"acknowledged", [][]byte{msg(14, 0)}, func(err error) bool { return err == nil }},
		{"out of memory midway", [][]byte{msg(11, unix.ENOMEM)}, func(err error) bool { return errors.Is(err, unix.ENOMEM) }},
		{"refused at its beginning", [][]byte{msg(10, unix.EPERM)}, func(err error) bool { return errors.Is(err, unix.EPERM) }},
		{"an error, then the acknowledgement", [][]byte{msg(12, unix.ENOENT), msg(14, 0)}, func(err error) bool { return errors.Is(err, unix.ENOENT) }},
		{"nothing", nil, func(err error) bool { return err != nil }},
		{"only an earlier batch's", [][]byte{msg(9, 0), msg(3, unix.EEXIST)}, func(err error) bool { return err != nil && !errors.Is(err, unix.EEXIST) }},
	} {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range tc.queue {
			if _, err := unix.Write(fds[1], d); err != nil {
				t.Fatal(err)
			}
		}
		done := make(chan error, 1)
		go func() { done <- (&quietSocket{fd: fds[0]}).replies(10, 14) }()
		select {
		case err := <-done:
			if !tc.want(err) {
				t.Errorf("%s: replies = %v", tc.name, err)
			}
		case <-time.After(2 * time.Second):
			t.Errorf("%s: replies still waiting after 2 s", tc.name)
		}
		unix.Close(fds[0])
		unix.Close(fds[1])
	}
}
