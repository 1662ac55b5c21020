package ipam_test

import (
	"fmt"
	"net/netip"

	"github.com/berth-net/berth/internal/ipam"
)

// A new network on a host whose 172.17.0.0/16 is already taken by a route:
// Docker's next pool is used, with its first host address as gateway.
func ExampleSelectSubnet() {
	hostRoutes := []netip.Prefix{netip.MustParsePrefix("172.17.0.0/16")}
	subnet, err := ipam.SelectSubnet(ipam.DefaultPools(), nil, hostRoutes)
	if err != nil {
		panic(err)
	}
	fmt.Println(subnet, ipam.DefaultGateway(subnet))
	// Output: 172.18.0.0/16 172.18.0.1
}

func ExampleSpace() {
	subnet := netip.MustParsePrefix("172.18.0.0/16")
	s, err := ipam.NewSpace(subnet, netip.Prefix{}, ipam.DefaultGateway(subnet))
	if err != nil {
		panic(err)
	}
	a, _ := s.Allocate()
	b, _ := s.Allocate()
	fmt.Println(a, b)
	s.Release(a)
	c, _ := s.Allocate() // the lowest free address comes back first
	fmt.Println(c)
	fmt.Println(s.Reserve(netip.MustParseAddr("172.18.0.1")))
	// Output:
	// 172.18.0.2 172.18.0.3
	// 172.18.0.2
	// Address already in use: 172.18.0.1 is the gateway of subnet 172.18.0.0/16
}

// A dual-stack network's IPv6 half on a host without IPv6 pools: Docker's
// ULA pool for the host, its first /64, the address after the subnet's own
// as gateway, and containers from the one after that.
func ExampleULAPool() {
	pool := ipam.ULAPool("") // the engine ID in real use
	subnet, err := ipam.SelectSubnet([]ipam.Pool{pool}, nil, nil)
	if err != nil {
		panic(err)
	}
	s, err := ipam.NewSpace(subnet, netip.Prefix{}, ipam.DefaultGateway(subnet))
	if err != nil {
		panic(err)
	}
	a, _ := s.Allocate()
	fmt.Println(pool)
	fmt.Println(subnet, s.Gateway(), a)
	// Output:
	// fd42:98fc:1c14::/48 (split into /64)
	// fd42:98fc:1c14::/64 fd42:98fc:1c14::1 fd42:98fc:1c14::2
}
