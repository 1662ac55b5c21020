package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-connections/nat"
	"github.com/spf13/cobra"

	"github.com/berth-net/berth/internal/client"
	"github.com/berth-net/berth/internal/errdefs"
)

// eachContainer runs op on every ref in turn, prints the refs that worked
// and returns the failures joined, as docker stop/kill/rm do.
func eachContainer(e *env, refs []string, op func(ref string) error) error {
	var errs []error
	for _, ref := range refs {
		if err := op(ref); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintln(e.out, ref)
	}
	return errors.Join(errs...)
}

func newStopCommand(e *env) *cobra.Command {
	var (
		timeout int
		signal  string
	)
	cmd := &cobra.Command{
		Use:   "stop [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Stop one or more running containers",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			var t *int
			if cmd.Flags().Changed("timeout") {
				t = &timeout
			}
			return eachContainer(e, args, func(ref string) error {
				return c.ContainerStop(cmd.Context(), ref, t, signal)
			})
		},
	}
	cmd.Flags().IntVarP(&timeout, "timeout", "t", 0, "Seconds to wait before killing the container")
	cmd.Flags().StringVarP(&signal, "signal", "s", "", "Signal to send to the container")
	return cmd
}

func newKillCommand(e *env) *cobra.Command {
	var signal string
	cmd := &cobra.Command{
		Use:   "kill [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Kill one or more running containers",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			return eachContainer(e, args, func(ref string) error {
				return c.ContainerKill(cmd.Context(), ref, signal)
			})
		},
	}
	cmd.Flags().StringVarP(&signal, "signal", "s", "", "Signal to send to the container")
	return cmd
}

// newRenameCommand is docker rename, with docker 28's messages.
func newRenameCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			oldName, newName := strings.TrimSpace(args[0]), strings.TrimSpace(args[1])
			if oldName == "" || newName == "" {
				return errors.New("Error: Neither old nor new names may be empty")
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			// docker's request path has "//" for "/name", which the
			// daemon's router cleans to the bare name.
			if err := c.ContainerRename(cmd.Context(), strings.TrimLeft(oldName, "/"), newName); err != nil {
				fmt.Fprintln(e.err, err)
				return fmt.Errorf("Error: failed to rename container named %s", oldName)
			}
			return nil
		},
	}
}

func newRmCommand(e *env) *cobra.Command {
	var force, volumes bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] CONTAINER [CONTAINER...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more containers",
		Args:    requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			var errs []error
			for _, ref := range args {
				ref = strings.Trim(ref, "/")
				if ref == "" {
					errs = append(errs, errors.New("container name cannot be empty"))
					continue
				}
				if err := c.ContainerRemove(cmd.Context(), ref, force); err != nil {
					// rm -f of something already gone is reported, not failed.
					if force && errdefs.Is(err, errdefs.KindNotFound) {
						fmt.Fprintln(e.err, err)
						continue
					}
					errs = append(errs, err)
					continue
				}
				fmt.Fprintln(e.out, ref)
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the removal of a running container (uses SIGKILL)")
	cmd.Flags().BoolVarP(&volumes, "volumes", "v", false, "Remove anonymous volumes associated with the container")
	return cmd
}

func newLogsCommand(e *env) *cobra.Command {
	var (
		o            client.LogsOptions
		since, until string
	)
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			now := time.Now()
			if o.Since, err = logTime(since, now); err != nil {
				return fmt.Errorf(`invalid value for "since": %w`, err)
			}
			if o.Until, err = logTime(until, now); err != nil {
				return fmt.Errorf(`invalid value for "until": %w`, err)
			}
			return printLogs(cmd.Context(), e, c, args[0], o)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.Follow, "follow", "f", false, "Follow log output")
	f.StringVarP(&o.Tail, "tail", "n", "all", "Number of lines to show from the end of the logs")
	f.BoolVarP(&o.Timestamps, "timestamps", "t", false, "Show timestamps")
	f.BoolVar(&o.Details, "details", false, "Show extra details provided to logs")
	f.StringVar(&since, "since", "", `Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)`)
	f.StringVar(&until, "until", "", `Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)`)
	return cmd
}

// logTime reads a --since or --until value as the docker CLI's
// timetypes.GetTimestamp: a duration back from now ("42m"), an RFC 3339
// time whose parts after the hour may be left out, with a zone ("Z",
// "+01:00") or in local time without one, a date (with or without a
// zone), or seconds since the epoch ("1700000000.5").
func logTime(v string, now time.Time) (time.Time, error) {
	if v == "" || v == "0" { // "0": no bound, as the docker CLI sends it
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	local := !strings.ContainsAny(v, "zZ+") && strings.Count(v, "-") != 3
	var layout string
	switch {
	case strings.Contains(v, ".") && local:
		layout = "2006-01-02T15:04:05.999999999"
	case strings.Contains(v, "."):
		layout = time.RFC3339Nano
	case strings.Contains(v, "T"):
		colons := strings.Count(v, ":")
		if !local && !strings.ContainsAny(v, "zZ") && colons > 0 {
			colons-- // the zone's offset has one
		}
		layouts := []string{"2006-01-02T15Z07:00", "2006-01-02T15:04Z07:00", time.RFC3339}
		if local {
			layouts = []string{"2006-01-02T15", "2006-01-02T15:04", "2006-01-02T15:04:05"}
		}
		layout = layouts[min(colons, 2)]
	case local:
		layout = "2006-01-02"
	default:
		layout = "2006-01-02Z07:00"
	}
	var t time.Time
	var err error
	if local {
		t, err = time.ParseInLocation(layout, v, time.Local)
	} else {
		t, err = time.Parse(layout, v)
	}
	if err == nil {
		return t, nil
	}
	if strings.Contains(v, "-") {
		return time.Time{}, err // a time the parser refused
	}
	sec, frac, _ := strings.Cut(v, ".")
	if s, err := strconv.ParseInt(sec, 10, 64); err == nil {
		ns := int64(0)
		if frac != "" {
			f, err := strconv.ParseFloat("0."+frac, 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("failed to parse value as time or duration: %q", v)
			}
			ns = int64(f * 1e9)
		}
		return time.Unix(s, ns), nil
	}
	return time.Time{}, fmt.Errorf("failed to parse value as time or duration: %q", v)
}

// printLogs copies the log stream, demultiplexing it unless the container
// has a tty (then the daemon sends it raw).
func printLogs(ctx context.Context, e *env, c *client.Client, ref string, o client.LogsOptions) error {
	info, _, err := c.ContainerInspect(ctx, ref)
	if err != nil {
		return err
	}
	body, err := c.ContainerLogs(ctx, info.ID, o)
	if err != nil {
		return err
	}
	defer body.Close()
	if info.Config != nil && info.Config.Tty {
		_, err = io.Copy(e.out, body)
		return err
	}
	_, err = client.Demux(e.out, e.err, body)
	return err
}

func newPortCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List port mappings or a specific mapping for the container",
		Args:  requiresRangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			info, _, err := c.ContainerInspect(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			var lines []string
			if info.NetworkSettings == nil {
				return nil
			}
			ports := info.NetworkSettings.Ports
			if len(args) == 2 {
				port, proto, _ := strings.Cut(args[1], "/")
				if proto == "" {
					proto = "tcp"
				}
				if _, err := strconv.ParseUint(port, 10, 16); err != nil {
					return fmt.Errorf("Error: invalid port (%s): %w", port, err)
				}
				bindings := ports[nat.Port(port+"/"+proto)]
				if len(bindings) == 0 {
					return fmt.Errorf("Error: No public port '%s' published for %s", args[1], args[0])
				}
				for _, b := range bindings {
					lines = append(lines, net.JoinHostPort(b.HostIP, b.HostPort))
				}
			} else {
				for p, bindings := range ports {
					for _, b := range bindings {
						lines = append(lines, fmt.Sprintf("%s -> %s", p, net.JoinHostPort(b.HostIP, b.HostPort)))
					}
				}
			}
			sort.Slice(lines, func(i, j int) bool { return naturalLess(lines[i], lines[j]) })
			if len(lines) > 0 {
				fmt.Fprintln(e.out, strings.Join(lines, "\n"))
			}
			return nil
		},
	}
	return cmd
}
