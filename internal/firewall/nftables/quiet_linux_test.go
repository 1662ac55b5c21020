package nftables

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

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
