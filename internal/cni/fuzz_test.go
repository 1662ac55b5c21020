package cni

import (
	"testing"
)

// FuzzNetworkConf feeds the configuration decoder what a runtime could
// send: it must not panic, and a configuration it takes must describe
// ranges an allocation can come from, whose addresses stay in their
// ranges and never take the gateway.
func FuzzNetworkConf(f *testing.F) {
	for _, seed := range []string{
		`{"cniVersion":"1.0.0","name":"n","type":"berth-cni","ipam":{"type":"host-local","subnet":"10.22.0.0/16"}}`,
		`{"cniVersion":"0.4.0","name":"n","isDefaultGateway":true,"ipam":{"type":"host-local","ranges":[[{"subnet":"10.1.0.0/24","rangeStart":"10.1.0.10","rangeEnd":"10.1.0.20","gateway":"10.1.0.254"}],[{"subnet":"fd00:1::/64"}]],"routes":[{"dst":"192.0.2.0/24","gw":"10.1.0.254"}]}}`,
		`{"cniVersion":"1.1.0","name":"n","ipam":{"type":"host-local","subnet":"10.0.0.0/30"},"runtimeConfig":{"portMappings":[{"hostPort":80,"containerPort":80}],"ips":["10.0.0.2"],"mac":"02:00:00:00:00:01"}}`,
		`{"cniVersion":"1.0.0","name":"n","ipam":{"type":"host-local","ranges":[[{"subnet":"10.0.0.0/24","rangeStart":"10.0.0.2","rangeEnd":"10.0.0.2"},{"subnet":"10.0.0.0/24","rangeStart":"10.0.0.9","rangeEnd":"10.0.0.9"}]]}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseConf(b)
		if err != nil {
			return
		}
		n, err := c.network()
		if err != nil {
			return
		}
		q, err := c.request(Env{Args: map[string]string{}})
		if err != nil {
			return
		}
		s := NewState()
		for i := range 3 {
			ips, err := s.Allocate(n, string(rune('a'+i)), q.IPs)
			if err != nil {
				return
			}
			for _, ip := range ips {
				r := n.RangeSets[ip.Set]
				a := ip.Address.Addr()
				inRange := false
				for _, rg := range r {
					inRange = inRange || rg.Subnet.Contains(a) && !a.Less(rg.Start) && !rg.End.Less(a)
				}
				if !inRange || a == ip.Gateway {
					t.Fatalf("allocated %s outside its ranges %v or the gateway %s", a, r, ip.Gateway)
				}
			}
			s.Attachments[string(rune('a'+i))] = &Attached{Network: n.Name, IPs: ips}
			q.IPs = nil
		}
	})
}
