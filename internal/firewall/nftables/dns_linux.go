package nftables

import (
	"fmt"
	"net/netip"
	"reflect"

	nftlib "github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// DNSTableName is the table RedirectDNS writes inside a container's
// namespace (never the host's).
const DNSTableName = "berth-dns"

// RedirectDNS makes 127.0.0.11:53 inside the network namespace at
// netnsPath lead to the embedded resolver's sockets, which listen on
// 127.0.0.11 at udpPort and tcpPort (ports the kernel picked), as Docker
// does with iptables (libnetwork resolver_linux.go): port 53 stays free for
// the container's own use, a DNS server of its own included. The rules
// replace any earlier ones in one batch (a restarted daemon's resolver
// has new ports):
//
//	table ip berth-dns {
//		chain output {
//			type nat hook output priority -100; policy accept;
//			ip daddr 127.0.0.11 udp dport 53 dnat to 127.0.0.11:<udpPort>
//			ip daddr 127.0.0.11 tcp dport 53 dnat to 127.0.0.11:<tcpPort>
//		}
//	}
//
// Answers need no rule: conntrack gives them port 53 back. Docker's
// SNAT rules in POSTROUTING only rewrite packets that conntrack already
// un-NATs.
func RedirectDNS(netnsPath string, resolver netip.Addr, udpPort, tcpPort uint16) error {
	return inDNSTable(netnsPath, func(conn *nftlib.Conn, t *nftlib.Table) error {
		conn.FlushTable(t)
		policy := nftlib.ChainPolicyAccept
		c := conn.AddChain(&nftlib.Chain{Name: "output", Table: t, Type: nftlib.ChainTypeNAT,
			Hooknum: nftlib.ChainHookOutput, Priority: nftlib.ChainPriorityNATDest, Policy: &policy})
		for _, r := range []struct {
			proto byte
			port  uint16
		}{{unix.IPPROTO_UDP, udpPort}, {unix.IPPROTO_TCP, tcpPort}} {
			conn.AddRule(&nftlib.Rule{Table: t, Chain: c, Exprs: dnsRedirect(resolver, r.proto, r.port)})
		}
		if err := conn.Flush(); err != nil {
			return fmt.Errorf("redirect %s:53 to the resolver in %q: %w", resolver, netnsPath, err)
		}
		return nil
	})
}

// UnredirectDNS removes RedirectDNS's table from the namespace at
// netnsPath, if it is there: a container whose first resolver was made
// for a connect that then failed is left as it was.
func UnredirectDNS(netnsPath string) error {
	return inDNSTable(netnsPath, func(conn *nftlib.Conn, t *nftlib.Table) error {
		conn.DelTable(t) // added first: no error when it was missing
		if err := conn.Flush(); err != nil {
			return fmt.Errorf("remove the DNS redirect in %q: %w", netnsPath, err)
		}
		return nil
	})
}

// inDNSTable runs fn with a connection to the namespace at netnsPath and
// the DNS redirect's table, already added to the batch.
func inDNSTable(netnsPath string, fn func(*nftlib.Conn, *nftlib.Table) error) error {
	if netnsPath == "" {
		return fmt.Errorf("DNS redirect: no namespace")
	}
	conn, done, err := dial(netnsPath)
	if err != nil {
		return err
	}
	defer done()
	t := &nftlib.Table{Family: nftlib.TableFamilyIPv4, Name: DNSTableName}
	conn.AddTable(t)
	return fn(conn, t)
}

// dnsRedirect is "ip daddr A <proto> dport 53 dnat to A:port".
func dnsRedirect(a netip.Addr, proto byte, port uint16) []expr.Any {
	addr := a.As4()
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr[:]},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(53)},
		&expr.Immediate{Register: 1, Data: addr[:]},
		&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(port)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	}
}

// DNSRedirected returns the ports the redirect RedirectDNS wrote in the
// namespace at netnsPath points at, if its table is exactly what
// RedirectDNS makes (one chain, its two rules for resolver, ports not 0);
// ok is false otherwise: no table yet, or one changed from inside the
// container (another chain, a drop policy), which RedirectDNS must write
// again. A re-adopted container's resolver listens on those ports if it
// can and leaves the redirect as it is: no commit in the namespace.
func DNSRedirected(netnsPath string, resolver netip.Addr) (udpPort, tcpPort uint16, ok bool) {
	if netnsPath == "" {
		return 0, 0, false
	}
	conn, done, err := dial(netnsPath)
	if err != nil {
		return 0, 0, false
	}
	defer done()
	t := &nftlib.Table{Family: nftlib.TableFamilyIPv4, Name: DNSTableName}
	chains, err := conn.ListChainsOfTableFamily(nftlib.TableFamilyIPv4)
	if err != nil {
		return 0, 0, false
	}
	var own []*nftlib.Chain
	for _, c := range chains {
		if c.Table != nil && c.Table.Name == DNSTableName {
			own = append(own, c)
		}
	}
	if len(own) != 1 || !isRedirectChain(own[0]) {
		return 0, 0, false
	}
	rules, err := conn.GetRules(t, &nftlib.Chain{Name: "output", Table: t})
	if err != nil || len(rules) != 2 {
		return 0, 0, false
	}
	var ports [2]uint16
	for i, proto := range []byte{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
		port, found := redirectPort(rules[i].Exprs)
		if !found || port == 0 || !reflect.DeepEqual(rules[i].Exprs, listedRedirect(resolver, proto, port)) {
			return 0, 0, false
		}
		ports[i] = port
	}
	return ports[0], ports[1], true
}

// isRedirectChain reports whether c is the chain RedirectDNS makes.
func isRedirectChain(c *nftlib.Chain) bool {
	return c.Name == "output" && c.Type == nftlib.ChainTypeNAT &&
		c.Hooknum != nil && *c.Hooknum == *nftlib.ChainHookOutput &&
		c.Priority != nil && *c.Priority == *nftlib.ChainPriorityNATDest &&
		c.Policy != nil && *c.Policy == nftlib.ChainPolicyAccept
}

// listedRedirect is dnsRedirect as the kernel lists it: a NAT's range
// ends where it starts.
func listedRedirect(a netip.Addr, proto byte, port uint16) []expr.Any {
	exprs := dnsRedirect(a, proto, port)
	for _, e := range exprs {
		if n, ok := e.(*expr.NAT); ok {
			n.RegAddrMax, n.RegProtoMax = n.RegAddrMin, n.RegProtoMin
		}
	}
	return exprs
}

// redirectPort is the port a dnsRedirect rule's NAT loads, if it has one.
func redirectPort(exprs []expr.Any) (uint16, bool) {
	for _, e := range exprs {
		if im, ok := e.(*expr.Immediate); ok && im.Register == 2 && len(im.Data) == 2 {
			return binaryutil.BigEndian.Uint16(im.Data), true
		}
	}
	return 0, false
}
