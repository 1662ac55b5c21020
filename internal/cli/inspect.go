package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-net/berth/internal/client"
	"github.com/berth-net/berth/internal/errdefs"
)

// inspector fetches one kind of object for inspect; size is inspect -s
// (containers only).
type inspector struct {
	kind string
	get  func(ctx context.Context, c *client.Client, ref string, size bool) (any, []byte, error)
}

// inspectors in docker's search order: container, image, network.
var inspectors = []inspector{
	{"container", func(ctx context.Context, c *client.Client, ref string, size bool) (any, []byte, error) {
		v, raw, err := c.ContainerInspectSized(ctx, ref, size)
		return v, raw, err
	}},
	{"image", func(ctx context.Context, c *client.Client, ref string, _ bool) (any, []byte, error) {
		v, raw, err := c.ImageInspect(ctx, ref)
		return v, raw, err
	}},
	{"network", func(ctx context.Context, c *client.Client, ref string, _ bool) (any, []byte, error) {
		v, raw, err := c.NetworkInspect(ctx, ref)
		return v, raw, err
	}},
}

func newInspectCommand(e *env) *cobra.Command {
	var format, typ string
	var size bool
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NAME|ID [NAME|ID...]",
		Short: "Return low-level information on berth objects",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if typ != "" && !knownKind(typ) {
				return fmt.Errorf("%q is not a valid value for --type", typ)
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			return inspectRefs(e.out, args, format, func(ref string) (any, []byte, error) {
				return inspectAny(cmd.Context(), c, ref, typ, size)
			})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&format, "format", "f", "", "Format output using a custom template")
	f.StringVar(&typ, "type", "", "Only inspect objects of the given type")
	f.BoolVarP(&size, "size", "s", false, "Display total file sizes if the type is container")
	return cmd
}

func knownKind(k string) bool {
	for _, in := range inspectors {
		if in.kind == k {
			return true
		}
	}
	return false
}

// inspectAny tries each object kind in turn (or only typ), moving on when
// the daemon says "not found"; the first other answer wins.
func inspectAny(ctx context.Context, c *client.Client, ref, typ string, size bool) (any, []byte, error) {
	for _, in := range inspectors {
		if typ != "" && in.kind != typ {
			continue
		}
		v, raw, err := in.get(ctx, c, ref, size)
		if err == nil {
			return v, raw, nil
		}
		if typ == "" && skippable(err) {
			continue
		}
		return nil, nil, err
	}
	return nil, nil, fmt.Errorf("Error: No such object: %s", ref)
}

func skippable(err error) bool {
	return errdefs.Is(err, errdefs.KindNotFound) ||
		strings.Contains(err.Error(), "not supported") ||
		strings.Contains(err.Error(), "invalid reference format")
}
