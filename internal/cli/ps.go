package cli

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	bcontainer "github.com/berth-net/berth/internal/container"
)

const psTable = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"

var psHeader = headerRow{
	"ID":           "CONTAINER ID",
	"Names":        "NAMES",
	"Image":        "IMAGE",
	"Command":      "COMMAND",
	"CreatedAt":    "CREATED AT",
	"RunningFor":   "CREATED",
	"Ports":        "PORTS",
	"State":        "STATE",
	"Status":       "STATUS",
	"Size":         "SIZE",
	"Labels":       "LABELS",
	"Mounts":       "MOUNTS",
	"Networks":     "NETWORKS",
	"Platform":     "PLATFORM",
	"LocalVolumes": "LOCAL VOLUMES",
}

// containerRow is what a ps --format template sees.
type containerRow struct {
	c     container.Summary
	trunc bool
	now   time.Time
}

func (r *containerRow) MarshalJSON() ([]byte, error) { return marshalMethods(r) }

func (r *containerRow) ID() string {
	if r.trunc {
		return bcontainer.TruncateID(r.c.ID)
	}
	return r.c.ID
}

// Names strips the API's leading "/"; truncated, it hides link names
// (those with another "/") as docker does.
func (r *containerRow) Names() string {
	names := make([]string, 0, len(r.c.Names))
	for _, n := range r.c.Names {
		names = append(names, strings.TrimPrefix(n, "/"))
	}
	if r.trunc {
		for _, n := range names {
			if !strings.Contains(n, "/") {
				return n
			}
		}
	}
	return strings.Join(names, ",")
}

func (r *containerRow) Image() string {
	if r.c.Image == "" {
		return "<no image>"
	}
	if r.trunc {
		if short := bcontainer.TruncateID(r.c.ImageID); short == bcontainer.TruncateID(r.c.Image) {
			return short
		}
		return familiarImage(r.c.Image)
	}
	return r.c.Image
}

// familiarImage drops the default registry and library prefixes that
// docker hides ("docker.io/library/busybox" → "busybox").
func familiarImage(ref string) string {
	ref = strings.TrimPrefix(ref, "docker.io/")
	return strings.TrimPrefix(ref, "library/")
}

func (r *containerRow) Command() string {
	cmd := r.c.Command
	if r.trunc {
		cmd = ellipsis(cmd, 20)
	}
	return strconv.Quote(cmd)
}

func (r *containerRow) CreatedAt() string { return time.Unix(r.c.Created, 0).String() }

func (r *containerRow) RunningFor() string {
	return units.HumanDuration(r.now.UTC().Sub(time.Unix(r.c.Created, 0))) + " ago"
}

func (r *containerRow) Ports() string            { return displayPorts(r.c.Ports) }
func (r *containerRow) State() string            { return r.c.State }
func (r *containerRow) Status() string           { return r.c.Status }
func (r *containerRow) Labels() string           { return joinLabels(r.c.Labels) }
func (r *containerRow) Label(name string) string { return r.c.Labels[name] }
func (r *containerRow) Size() string {
	size := units.HumanSizeWithPrecision(float64(r.c.SizeRw), 3)
	if r.c.SizeRootFs > 0 {
		size += " (virtual " + units.HumanSizeWithPrecision(float64(r.c.SizeRootFs), 3) + ")"
	}
	return size
}
func (r *containerRow) Mounts() string { return "" }

// platform is an image's platform, as docker's ps shows it.
type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

// Platform is the image's platform; berth records none, and docker prints
// <nil> (null in JSON) then.
func (r *containerRow) Platform() *platform  { return nil }
func (r *containerRow) LocalVolumes() string { return "0" }

func (r *containerRow) Networks() string {
	if r.c.NetworkSettings == nil {
		return ""
	}
	names := make([]string, 0, len(r.c.NetworkSettings.Networks))
	for n := range r.c.NetworkSettings.Networks {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

// displayPorts renders ports as docker ps does: consecutive ports with the
// same host IP and protocol grouped into ranges ("0.0.0.0:8000-8002->80-82/tcp"),
// unpublished ports as "80/tcp", mappings to a different host port listed last.
func displayPorts(ports []container.Port) string {
	ports = append([]container.Port(nil), ports...)
	sort.Slice(ports, func(i, j int) bool { return portLess(ports[i], ports[j]) })
	type group struct{ first, last uint16 }
	groups := map[string]*group{}
	var keys, out, mappings []string
	for _, p := range ports {
		key := p.Type
		if p.IP != "" {
			if p.PublicPort != p.PrivatePort {
				hp := net.JoinHostPort(p.IP, strconv.Itoa(int(p.PublicPort)))
				mappings = append(mappings, fmt.Sprintf("%s->%d/%s", hp, p.PrivatePort, p.Type))
				continue
			}
			key = p.IP + "/" + p.Type
		}
		g := groups[key]
		switch {
		case g == nil:
			groups[key] = &group{p.PrivatePort, p.PrivatePort}
			keys = append(keys, key)
		case p.PrivatePort == g.last+1:
			g.last = p.PrivatePort
		default:
			out = append(out, portGroup(key, g.first, g.last))
			groups[key] = &group{p.PrivatePort, p.PrivatePort}
		}
	}
	for _, k := range keys {
		out = append(out, portGroup(k, groups[k].first, groups[k].last))
	}
	return strings.Join(append(out, mappings...), ", ")
}

func portGroup(key string, first, last uint16) string {
	ip, proto, hasIP := strings.Cut(key, "/")
	if !hasIP {
		proto, ip = key, ""
	}
	r := strconv.Itoa(int(first))
	if first != last {
		r += "-" + strconv.Itoa(int(last))
	}
	if ip != "" {
		r = net.JoinHostPort(ip, r) + "->" + r
	}
	return r + "/" + proto
}

func portLess(a, b container.Port) bool {
	if a.PrivatePort != b.PrivatePort {
		return a.PrivatePort < b.PrivatePort
	}
	if a.IP != b.IP {
		return a.IP < b.IP
	}
	if a.PublicPort != b.PublicPort {
		return a.PublicPort < b.PublicPort
	}
	return a.Type < b.Type
}

func newPsCommand(e *env) *cobra.Command {
	var (
		all, quiet, noTrunc, latest, size bool
		last                              int
		format                            string
		filters                           filterFlag
	)
	cmd := &cobra.Command{
		Use:   "ps [OPTIONS]",
		Short: "List containers",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			if latest {
				last = 1
			}
			// As docker ps: a template that shows .Size asks for it,
			// unless -q or an explicit --size=false.
			if format != "" && !quiet && !cmd.Flags().Changed("size") && usesSize(format) {
				size = true
			}
			list, err := c.ContainerListSized(cmd.Context(), all || last > 0, size, filters.value())
			if err != nil {
				return err
			}
			if last > 0 && len(list) > last {
				list = list[:last]
			}
			table := psTable
			if size {
				table += `\t{{.Size}}`
			}
			rows := make([]any, len(list))
			now := e.now()
			for i := range list {
				rows[i] = &containerRow{c: list[i], trunc: !noTrunc, now: now}
			}
			tmpl := listFormat(format, quiet, table, "{{.ID}}")
			if quiet {
				// docker ps: -q wins over any format (images and network
				// ls let a custom one win), saying so.
				if format != "" {
					fmt.Fprintln(e.err, "WARNING: Ignoring custom format, because both --format and --quiet are set.")
				}
				tmpl = "{{.ID}}"
			}
			return writeList(e.out, tmpl, psHeader, rows)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	f.BoolVarP(&quiet, "quiet", "q", false, "Only display container IDs")
	f.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	f.BoolVarP(&latest, "latest", "l", false, "Show the latest created container (includes all states)")
	f.IntVarP(&last, "last", "n", -1, "Show n last created containers (includes all states)")
	f.BoolVarP(&size, "size", "s", false, "Display total file sizes")
	f.StringVar(&format, "format", "", "Format output using a custom template")
	f.VarP(&filters, "filter", "f", "Filter output based on conditions provided")
	return cmd
}

// usesSize says whether a ps template shows the size, as docker finds out
// by running it (FieldsUsed): .Size, or the whole row as {{json .}} (not
// --format json, which docker renders without running the template).
func usesSize(format string) bool {
	return strings.Contains(format, ".Size") || strings.Contains(strings.ReplaceAll(format, " ", ""), "{{json.}}")
}
