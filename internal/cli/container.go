package cli

import (
	"context"

	"github.com/berth-net/berth/internal/client"
	"github.com/spf13/cobra"
)

// newContainerCommand is docker's "container" group: the same commands as
// the top-level verbs, under their management names (container ls, …),
// so that scripts using either form work.
func newContainerCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "container",
		Short: "Manage containers",
		Args:  noArgs,
		RunE:  showHelp,
	}
	ls := newPsCommand(e)
	ls.Use, ls.Aliases = "ls [OPTIONS]", []string{"ps", "list"}
	cmd.AddCommand(
		newRunCommand(e),
		newCreateCommand(e),
		newStartCommand(e),
		ls,
		newContainerInspectCommand(e),
		newExecCommand(e),
		newStopCommand(e),
		newKillCommand(e),
		newRmCommand(e),
		newRenameCommand(e),
		newLogsCommand(e),
		newPortCommand(e),
	)
	return cmd
}

func newContainerInspectCommand(e *env) *cobra.Command {
	var size bool
	cmd := newKindInspectCommand(e, "inspect [OPTIONS] CONTAINER [CONTAINER...]",
		"Display detailed information on one or more containers",
		func(ctx context.Context, c *client.Client, ref string) (any, []byte, error) {
			v, raw, err := c.ContainerInspectSized(ctx, ref, size)
			return v, raw, err
		})
	cmd.Flags().BoolVarP(&size, "size", "s", false, "Display total file sizes")
	return cmd
}
