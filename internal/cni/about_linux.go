package cni

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/berth-net/berth/internal/version"
)

// about is what berth-cni prints without CNI_COMMAND, as the reference
// plugins do (to stderr, exit 0): what it is and the versions it speaks,
// and how to list what it made.
func about(stderr io.Writer) int {
	fmt.Fprintf(stderr, "berth-cni %s: container bridge networking as a CNI plugin\n", version.Version)
	fmt.Fprintf(stderr, "CNI protocol versions supported: %s\n", strings.Join(SupportedVersions, ", "))
	fmt.Fprintf(stderr, "berth-cni ls [DATADIR] lists the attachments it made (default %s)\n", DefaultDataDir)
	return 0
}

// list prints the attachments recorded in dataDir, one a line.
func list(dataDir string, stdout, stderr io.Writer) int {
	dir, err := openStateDir(dataDir)
	if err != nil {
		fmt.Fprintln(stderr, "berth-cni:", err)
		return 1
	}
	defer dir.close()
	s, err := dir.load()
	if err != nil {
		fmt.Fprintln(stderr, "berth-cni:", err)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "NETWORK\tCONTAINER\tIFNAME\tADDRESSES\tBRIDGE\tHOST VETH\tPORTS\tSTATE")
	for _, k := range slices.Sorted(maps.Keys(s.Attachments)) {
		a := s.Attachments[k]
		var addrs, ports []string
		for _, ip := range a.IPs {
			addrs = append(addrs, ip.Address.String())
		}
		for _, p := range a.Ports {
			host := ""
			if p.HostIP.IsValid() {
				host = p.HostIP.String() + ":"
			}
			ports = append(ports, fmt.Sprintf("%s%d->%d/%s", host, p.HostPort, p.ContainerPort, p.Protocol))
		}
		state := "attached"
		if !a.Done {
			state = "unfinished (the next ADD or DEL undoes it)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.Network, a.ContainerID, a.IfName, strings.Join(addrs, ","),
			s.Networks[a.Network].Bridge, a.HostIfName, strings.Join(ports, ","), state)
	}
	tw.Flush()
	return 0
}
