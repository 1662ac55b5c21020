package cli

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/docker/docker/api/types/network"
	"github.com/spf13/cobra"

	"github.com/berth-net/berth/internal/client"
	"github.com/berth-net/berth/internal/container"
)

const networkTable = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"

var networkHeader = headerRow{
	"ID":        "NETWORK ID",
	"Name":      "NAME",
	"Driver":    "DRIVER",
	"Scope":     "SCOPE",
	"IPv4":      "IPV4",
	"IPv6":      "IPV6",
	"Internal":  "INTERNAL",
	"Labels":    "LABELS",
	"CreatedAt": "CREATED AT",
}

// networkRow is what a network ls --format template sees.
type networkRow struct {
	n     network.Summary
	trunc bool
}

func (r *networkRow) MarshalJSON() ([]byte, error) { return marshalMethods(r) }

func (r *networkRow) ID() string {
	if r.trunc {
		return container.TruncateID(r.n.ID)
	}
	return r.n.ID
}
func (r *networkRow) Name() string             { return r.n.Name }
func (r *networkRow) Driver() string           { return r.n.Driver }
func (r *networkRow) Scope() string            { return r.n.Scope }
func (r *networkRow) IPv4() string             { return formatBool(r.n.EnableIPv4) }
func (r *networkRow) IPv6() string             { return formatBool(r.n.EnableIPv6) }
func (r *networkRow) Internal() string         { return formatBool(r.n.Internal) }
func (r *networkRow) Labels() string           { return joinLabels(r.n.Labels) }
func (r *networkRow) Label(name string) string { return r.n.Labels[name] }
func (r *networkRow) CreatedAt() string        { return r.n.Created.String() }

func newNetworkLsCommand(e *env) *cobra.Command {
	var (
		quiet, noTrunc bool
		format         string
		filters        filterFlag
	)
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			nets, err := c.NetworkList(cmd.Context(), filters.value())
			if err != nil {
				return err
			}
			sort.SliceStable(nets, func(i, j int) bool { return naturalLess(nets[i].Name, nets[j].Name) })
			rows := make([]any, len(nets))
			for i := range nets {
				rows[i] = &networkRow{n: nets[i], trunc: !noTrunc}
			}
			return writeList(e.out, listFormat(format, quiet, networkTable, "{{.ID}}"), networkHeader, rows)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&quiet, "quiet", "q", false, "Only display network IDs")
	f.BoolVar(&noTrunc, "no-trunc", false, "Do not truncate the output")
	f.StringVar(&format, "format", "", "Format output using a custom template")
	f.VarP(&filters, "filter", "f", `Provide filter values (e.g. "driver=bridge")`)
	return cmd
}

func newNetworkInspectCommand(e *env) *cobra.Command {
	cmd := newKindInspectCommand(e, "inspect [OPTIONS] NETWORK [NETWORK...]",
		"Display detailed information on one or more networks",
		func(ctx context.Context, c *client.Client, ref string) (any, []byte, error) {
			n, raw, err := c.NetworkInspect(ctx, ref)
			return n, raw, err
		})
	cmd.Flags().BoolP("verbose", "v", false, "Verbose output for diagnostics")
	return cmd
}

// networkCreateOptions are the flags of network create.
type networkCreateOptions struct {
	driver     string
	opts       mapFlag
	labels     labelFlag
	internal   bool
	attachable bool
	ipv6       bool
	scope      string
	ipamDriver string
	subnets    []string
	ipRanges   []string
	gateways   []string
	auxAddrs   mapFlag
	ipamOpts   mapFlag
	configOnly bool
	configFrom string
}

func newNetworkCreateCommand(e *env) *cobra.Command {
	var o networkCreateOptions
	var ipv4 bool
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] NETWORK",
		Short: "Create a network",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := o.request(args[0])
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("ipv4") {
				req.EnableIPv4 = &ipv4
			}
			if cmd.Flags().Changed("ipv6") {
				req.EnableIPv6 = &o.ipv6
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			resp, err := c.NetworkCreate(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintln(e.out, resp.ID)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.driver, "driver", "d", "bridge", "Driver to manage the Network")
	f.VarP(&o.opts, "opt", "o", "Set driver specific options")
	f.Var(&o.labels, "label", "Set metadata on a network")
	f.BoolVar(&o.internal, "internal", false, "Restrict external access to the network")
	f.BoolVar(&ipv4, "ipv4", true, "Enable or disable IPv4 address assignment")
	f.BoolVar(&o.ipv6, "ipv6", false, "Enable or disable IPv6 address assignment")
	f.BoolVar(&o.attachable, "attachable", false, "Enable manual container attachment")
	f.StringVar(&o.scope, "scope", "", "Control the network's scope")
	f.StringVar(&o.ipamDriver, "ipam-driver", "default", "IP Address Management Driver")
	f.StringSliceVar(&o.subnets, "subnet", nil, "Subnet in CIDR format that represents a network segment")
	f.StringSliceVar(&o.ipRanges, "ip-range", nil, "Allocate container ip from a sub-range")
	f.StringSliceVar(&o.gateways, "gateway", nil, "IPv4 or IPv6 Gateway for the master subnet")
	f.Var(&o.auxAddrs, "aux-address", "Auxiliary IPv4 or IPv6 addresses used by Network driver")
	f.Var(&o.ipamOpts, "ipam-opt", "Set IPAM driver specific options")
	f.BoolVar(&o.configOnly, "config-only", false, "Create a configuration only network")
	f.StringVar(&o.configFrom, "config-from", "", "The network from which to copy the configuration")
	return cmd
}

// request validates the IPAM flags as docker does client-side and builds
// the create request.
func (o *networkCreateOptions) request(name string) (network.CreateRequest, error) {
	ipam, err := o.ipamConfig()
	if err != nil {
		return network.CreateRequest{}, err
	}
	req := network.CreateRequest{
		Name: name,
		CreateOptions: network.CreateOptions{
			Driver:     o.driver,
			Scope:      o.scope,
			IPAM:       ipam,
			Internal:   o.internal,
			Attachable: o.attachable,
			Options:    orEmpty(o.opts.m),
			Labels:     o.labels.toMap(),
			ConfigOnly: o.configOnly,
		},
	}
	if o.configFrom != "" {
		req.ConfigFrom = &network.ConfigReference{Network: o.configFrom}
	}
	return req, nil
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func (o *networkCreateOptions) ipamConfig() (*network.IPAM, error) {
	if len(o.subnets) < len(o.ipRanges) || len(o.subnets) < len(o.gateways) {
		return nil, errors.New("every ip-range or gateway must have a corresponding subnet")
	}
	configs := make([]network.IPAMConfig, 0, len(o.subnets))
	prefixes := make([]netip.Prefix, 0, len(o.subnets))
	for _, s := range o.subnets {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("invalid subnet: invalid CIDR address: %s", s)
		}
		for _, q := range prefixes {
			if p.Overlaps(q) {
				return nil, errors.New("multiple overlapping subnet configuration is not supported")
			}
		}
		prefixes = append(prefixes, p.Masked())
		configs = append(configs, network.IPAMConfig{Subnet: s, AuxAddress: map[string]string{}})
	}
	if err := assignToSubnet(configs, prefixes, o.ipRanges, "range", func(c *network.IPAMConfig) *string { return &c.IPRange }); err != nil {
		return nil, err
	}
	if err := assignToSubnet(configs, prefixes, o.gateways, "gateway", func(c *network.IPAMConfig) *string { return &c.Gateway }); err != nil {
		return nil, err
	}
	for key, addr := range o.auxAddrs.m {
		i, err := subnetFor(prefixes, addr)
		if err != nil {
			return nil, err
		}
		if i < 0 {
			return nil, fmt.Errorf("no matching subnet for aux-address %s", addr)
		}
		configs[i].AuxAddress[key] = addr
	}
	return &network.IPAM{Driver: o.ipamDriver, Config: configs, Options: orEmpty(o.ipamOpts.m)}, nil
}

// assignToSubnet puts each value (an ip-range or gateway) on the subnet
// that contains it, refusing a second one for the same subnet.
func assignToSubnet(configs []network.IPAMConfig, prefixes []netip.Prefix, values []string, what string, field func(*network.IPAMConfig) *string) error {
	for _, v := range values {
		i, err := subnetFor(prefixes, v)
		if err != nil {
			return err
		}
		if i < 0 {
			return fmt.Errorf("no matching subnet for %s %s", what, v)
		}
		dst := field(&configs[i])
		if *dst != "" {
			plural := map[string]string{"range": "ranges", "gateway": "gateways"}[what]
			return fmt.Errorf("cannot configure multiple %s (%s, %s) on the same subnet (%s)", plural, v, *dst, configs[i].Subnet)
		}
		*dst = v
	}
	return nil
}

// subnetFor returns the index of the subnet containing addr (an address
// or a CIDR), or -1.
func subnetFor(prefixes []netip.Prefix, addr string) (int, error) {
	var ip netip.Addr
	if strings.Contains(addr, "/") {
		p, err := netip.ParsePrefix(addr)
		if err != nil {
			return -1, fmt.Errorf("invalid CIDR address: %s", addr)
		}
		ip = p.Addr()
	} else {
		a, err := netip.ParseAddr(addr)
		if err != nil {
			return -1, fmt.Errorf("invalid address: %s", addr)
		}
		ip = a
	}
	for i, p := range prefixes {
		if p.Contains(ip) {
			return i, nil
		}
	}
	return -1, nil
}
