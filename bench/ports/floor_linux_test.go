package portsbench

import (
	"encoding/binary"
	"os"
	"testing"

	nftlib "github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The floor is written with google/nftables alone, as a bare program would:
// a table, one map of type inet_proto . inet_service : ipv4_addr .
// inet_service, and the elements in messages of 512 (the nested attribute
// holding them has a 16-bit length) in one batch.

var (
	floorTable = &nftlib.Table{Family: nftlib.TableFamilyINet, Name: "floor"}
	floorMap   = &nftlib.Set{
		Table: floorTable, Name: "ports", ID: 1, IsMap: true,
		KeyType:  nftlib.MustConcatSetType(nftlib.TypeInetProto, nftlib.TypeInetService),
		DataType: nftlib.MustConcatSetType(nftlib.TypeIPAddr, nftlib.TypeInetService),
	}
)

func bareConn(b *testing.B, ns string) *nftlib.Conn {
	b.Helper()
	f, err := os.Open(ns)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	conn, err := nftlib.New(nftlib.AsLasting(), nftlib.WithNetNSFd(int(f.Fd())), nftlib.WithSockOptions(func(c *netlink.Conn) error {
		rc, err := c.SyscallConn()
		if err != nil {
			return err
		}
		return rc.Control(func(fd uintptr) {
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 32<<20)
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 32<<20)
		})
	}))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.CloseLasting() })
	return conn
}

// resetBareTable makes the table and an empty map.
func resetBareTable(b *testing.B, conn *nftlib.Conn) {
	b.Helper()
	conn.AddTable(floorTable)
	conn.DelTable(floorTable)
	conn.AddTable(floorTable)
	if err := conn.AddSet(floorMap, nil); err != nil {
		b.Fatal(err)
	}
	if err := conn.Flush(); err != nil {
		b.Fatal(err)
	}
}

// writeBareElements adds n elements tcp . 20000+i : 172.17.0.2 . 20000+i in one batch.
func writeBareElements(b *testing.B, conn *nftlib.Conn, n int) {
	b.Helper()
	els := make([]nftlib.SetElement, n)
	for i := range els {
		port := uint16(20000 + i)
		key := []byte{unix.IPPROTO_TCP, 0, 0, 0, 0, 0, 0, 0}
		binary.BigEndian.PutUint16(key[4:], port)
		val := []byte{172, 17, 0, 2, 0, 0, 0, 0}
		binary.BigEndian.PutUint16(val[4:], port)
		els[i] = nftlib.SetElement{Key: key, Val: val}
	}
	for i := 0; i < n; i += 512 {
		if err := conn.SetAddElements(floorMap, els[i:min(i+512, n)]); err != nil {
			b.Fatal(err)
		}
	}
	if err := conn.Flush(); err != nil {
		b.Fatal(err)
	}
}
