package bridge

import (
	"testing"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// echoedLink builds an RTM_NEWLINK payload as the kernel echoes it.
func echoedLink(index int32, attrs ...*nl.RtAttr) []byte {
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = index
	b := msg.Serialize()
	for _, a := range attrs {
		b = append(b, a.Serialize()...)
	}
	return b
}

func TestParseEchoedLink(t *testing.T) {
	good := echoedLink(42,
		nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated("bv1234567")),
		nl.NewRtAttr(unix.IFLA_MTU, nl.Uint32Attr(1450)),
		nl.NewRtAttr(unix.IFLA_STATS64, make([]byte, 200)), // skipped
		nl.NewRtAttr(unix.IFLA_MASTER, nl.Uint32Attr(7)),
		nl.NewRtAttr(unix.IFLA_LINK, nl.Uint32Attr(3)),
	)
	l, ok := parseEchoedLink(good)
	if !ok || l.Index != 42 || l.Name != "bv1234567" || l.MTU != 1450 || l.MasterIndex != 7 || l.ParentIndex != 3 {
		t.Errorf("parseEchoedLink = %+v, %v", l, ok)
	}
	// Malformed input is refused, never read past its end.
	for name, b := range map[string][]byte{
		"empty":               nil,
		"short header":        good[:10],
		"attribute cut short": good[:len(good)-2],
		"attribute length 2":  append(echoedLink(5), 2, 0, 3, 0),
		"no index":            echoedLink(0, nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated("x"))),
	} {
		if l, ok := parseEchoedLink(b); ok {
			t.Errorf("%s: parseEchoedLink = %+v, true; want false", name, l)
		}
	}
}
