package cli

import (
	"bufio"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/network"
	"github.com/spf13/cobra"

	"github.com/berth-net/berth/internal/errdefs"
)

func newNetworkCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "network",
		Short: "Manage networks",
		Args:  noArgs,
		RunE:  showHelp,
	}
	cmd.AddCommand(
		newNetworkLsCommand(e),
		newNetworkInspectCommand(e),
		newNetworkCreateCommand(e),
		newNetworkRmCommand(e),
		newNetworkConnectCommand(e),
		newNetworkDisconnectCommand(e),
		newNetworkPruneCommand(e),
	)
	return cmd
}

func newNetworkRmCommand(e *env) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm NETWORK [NETWORK...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more networks",
		Args:    requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			// Like docker: report each failure as it happens, print the
			// names removed, and end with a non-zero status if any failed.
			failed := false
			for _, name := range args {
				// docker inspects first to warn about swarm ingress
				// networks; berth has none, but sends the same calls.
				_, _, _ = c.NetworkInspect(cmd.Context(), name)
				if err := c.NetworkRemove(cmd.Context(), name); err != nil {
					if force && errdefs.Is(err, errdefs.KindNotFound) {
						continue
					}
					fmt.Fprintln(e.err, err)
					failed = true
					continue
				}
				fmt.Fprintln(e.out, name)
			}
			if failed {
				return StatusError{StatusCode: 1, Status: "exit status 1"}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not error if the network does not exist")
	return cmd
}

func newNetworkConnectCommand(e *env) *cobra.Command {
	var (
		ip, ip6      string
		aliases, lls []string
		driverOpts   []string
		gwPriority   int
		links        = listFlag{validate: validateLink}
	)
	cmd := &cobra.Command{
		Use:   "connect [OPTIONS] NETWORK CONTAINER",
		Short: "Connect a container to a network",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := parseDriverOpts(driverOpts)
			if err != nil {
				return err
			}
			cfg := &network.EndpointSettings{
				IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: ip, IPv6Address: ip6, LinkLocalIPs: lls},
				Links:      links.list,
				Aliases:    aliases,
				DriverOpts: opts,
				GwPriority: gwPriority,
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			return c.NetworkConnect(cmd.Context(), args[0], args[1], cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&ip, "ip", "", "IPv4 address (e.g., \"172.30.100.104\")")
	f.StringVar(&ip6, "ip6", "", "IPv6 address (e.g., \"2001:db8::33\")")
	f.Var(&links, "link", "Add link to another container")
	f.StringSliceVar(&aliases, "alias", []string{}, "Add network-scoped alias for the container")
	f.StringSliceVar(&lls, "link-local-ip", []string{}, "Add a link-local address for the container")
	f.StringSliceVar(&driverOpts, "driver-opt", nil, "driver options for the network")
	f.IntVar(&gwPriority, "gw-priority", 0, "Highest gw-priority provides the default gateway. Accepts positive and negative values.")
	return cmd
}

func parseDriverOpts(kvs []string) (map[string]string, error) {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, errors.New("invalid key/value pair format in driver options")
		}
		m[k] = strings.TrimSpace(v)
	}
	return m, nil
}

func newNetworkDisconnectCommand(e *env) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "disconnect [OPTIONS] NETWORK CONTAINER",
		Short: "Disconnect a container from a network",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			return c.NetworkDisconnect(cmd.Context(), args[0], args[1], force)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the container to disconnect from a network")
	return cmd
}

const pruneWarning = `WARNING! This will remove all custom networks not used by at least one container.
Are you sure you want to continue?`

func newNetworkPruneCommand(e *env) *cobra.Command {
	var (
		force   bool
		filters filterFlag
	)
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all unused networks",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !force && !confirm(e, pruneWarning) {
				// docker treats the refusal as a cancellation: no
				// message, exit 0.
				return nil
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			report, err := c.NetworkPrune(cmd.Context(), filters.value())
			if err != nil {
				return err
			}
			if len(report.NetworksDeleted) > 0 {
				fmt.Fprintln(e.out, "Deleted Networks:")
				for _, n := range report.NetworksDeleted {
					fmt.Fprintln(e.out, n)
				}
				fmt.Fprintln(e.out)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	cmd.Flags().Var(&filters, "filter", `Provide filter values (e.g. "until=<timestamp>")`)
	return cmd
}

// confirm asks message with docker's " [y/N] " suffix and reads one line.
func confirm(e *env, message string) bool {
	fmt.Fprint(e.out, message+" [y/N] ")
	sc := bufio.NewScanner(e.in)
	if !sc.Scan() {
		return false
	}
	return strings.EqualFold(strings.TrimSpace(sc.Text()), "y")
}

func formatBool(b bool) string { return strconv.FormatBool(b) }
