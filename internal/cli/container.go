package cli

import "github.com/spf13/cobra"

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
		newLogsCommand(e),
		newPortCommand(e),
	)
	return cmd
}

func newContainerInspectCommand(e *env) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Display detailed information on one or more containers",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			return inspectRefs(e.out, args, format, func(ref string) (any, []byte, error) {
				v, raw, err := c.ContainerInspect(cmd.Context(), ref)
				return v, raw, err
			})
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template")
	cmd.Flags().BoolP("size", "s", false, "Display total file sizes")
	return cmd
}
