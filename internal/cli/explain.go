package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/firewall"
	"github.com/berth-net/berth/internal/network"
)

const explainLong = `FROM and TO are each a container (name or ID; a container named "host" by
its ID), "host" (the host itself) or an address; TO takes a port as
NAME:PORT, ADDRESS:PORT or [IPV6]:PORT.
With a port the packet is tcp (or --proto udp), without one an ICMP echo.
A packet from an address arrives on the interface the host's route to it
leaves by, unless --in names another; "host" as TO is a container's
gateway, the host's loopback, or its address on that interface.

Examples:
  berth explain web 203.0.113.9:443        # a container out to the world
  berth explain 198.51.100.7 host:8080     # a client to a published port
  berth explain 198.51.100.7 web:80        # straight to a container's address
  berth explain web db:5432                # between two containers
  berth explain web host:22                # a container to the host's sshd`

func newExplainCommand(e *env) *cobra.Command {
	var req network.ExplainRequest
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "explain [OPTIONS] FROM TO[:PORT]",
		Short: "Explain what the firewall does to a connection",
		Long:  explainLong,
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.From = args[0]
			to, port, err := splitExplainTarget(args[1])
			if err != nil {
				return err
			}
			req.To, req.Port = to, port
			c, err := e.client()
			if err != nil {
				return err
			}
			ex, err := c.Explain(cmd.Context(), req)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(e.out)
				enc.SetIndent("", "  ")
				return enc.Encode(ex)
			}
			return printExplanation(e.out, ex)
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Proto, "proto", "", "Protocol: tcp, udp or icmp (default tcp with a port, icmp without)")
	f.StringVar(&req.In, "in", "", "Interface a packet from an address arrives on")
	f.BoolVarP(&req.IPv6, "ipv6", "6", false, "Use the containers' IPv6 addresses")
	f.BoolVar(&asJSON, "json", false, "Print the explanation as JSON")
	return cmd
}

// splitExplainTarget splits TO into its end and port: an address alone
// (IPv6 ones have colons), [IPV6]:PORT, ADDRESS:PORT or NAME:PORT.
func splitExplainTarget(s string) (string, uint16, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.String(), 0, nil
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 {
			return "", 0, errdefs.Invalid("invalid port in %q: 1 to 65535", s)
		}
		return ap.Addr().String(), ap.Port(), nil
	}
	name, p, ok := strings.Cut(s, ":")
	if !ok {
		return s, 0, nil
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil || port == 0 || name == "" {
		return "", 0, errdefs.Invalid("invalid destination %q: NAME, ADDRESS, NAME:PORT, ADDRESS:PORT or [IPV6]:PORT", s)
	}
	return name, uint16(port), nil
}

// printExplanation prints the packet, its two ends, the rules that acted
// on it in order, and the outcome with the rule that decided it.
func printExplanation(out io.Writer, ex network.Explanation) error {
	fmt.Fprintf(out, "%s\n  from %s\n  to   %s\n\n", ex.Packet, ex.From, ex.To)
	tw := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "HOOK\tCHAIN\tRULE\tEFFECT")
	for _, s := range ex.Steps {
		chain, rule := s.Chain, s.Rule
		if chain == "" {
			chain = "-"
		}
		if rule == "" {
			rule = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Hook, chain, rule, s.Effect)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\n%s\n", explainVerdict(ex))
	for _, n := range ex.Notes {
		fmt.Fprintf(out, "note: %s\n", n)
	}
	return nil
}

// explainVerdict is the last line: what became of the packet and why.
func explainVerdict(ex network.Explanation) string {
	var b strings.Builder
	b.WriteString(strings.ToUpper(string(ex.Outcome)))
	switch {
	case ex.Outcome != firewall.Delivered:
	case ex.Decision != nil && ex.Decision.Hook == "container":
		b.WriteString(" inside the container")
	case ex.Oif != "":
		fmt.Fprintf(&b, " out of %s", ex.Oif)
	default:
		b.WriteString(" to the host itself")
	}
	if ex.DNAT.IsValid() {
		fmt.Fprintf(&b, ", to %s (a published port)", ex.DNAT)
	}
	if ex.Masquerade {
		b.WriteString(", its source masqueraded")
	}
	if d := ex.Decision; d != nil {
		switch {
		case d.Hook == "container":
			fmt.Fprintf(&b, ": %s", d.Effect)
		case d.Hook == "routing" || d.Hook == "bridge":
			fmt.Fprintf(&b, ": %s (no rule of berth's decides it)", d.Effect)
		case d.Chain == "":
			fmt.Fprintf(&b, ": %s", d.Effect)
		case strings.HasPrefix(d.Chain, "table "):
			fmt.Fprintf(&b, ": %s, %s: %s", d.Chain, d.Rule, d.Effect)
		default:
			fmt.Fprintf(&b, ": table %s %s, chain %s: %s", firewall.TableFamily, firewall.TableName, d.Chain, d.Rule)
		}
	}
	return b.String()
}
