// Package cli is the berth command line: docker's verbs, flags, output and
// exit codes, so that a script written for the docker CLI runs unchanged
// with berth in its place. It is a client of berth's Docker-compatible API
// only (through internal/client) and never reaches into the daemon.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-net/berth/internal/client"
	"github.com/berth-net/berth/internal/version"
)

// env is what every command shares: the standard streams, the clock, the
// global flags and, once made, the API client.
type env struct {
	in       io.Reader
	out, err io.Writer
	now      func() time.Time
	log      *slog.Logger

	host  string // -H/--host
	debug bool   // -D/--debug

	api *client.Client
}

// client returns the API client for the chosen host, creating it once.
func (e *env) client() (*client.Client, error) {
	if e.api != nil {
		return e.api, nil
	}
	c, err := client.New(client.ResolveHost(e.host), e.log)
	if err != nil {
		return nil, err
	}
	e.api = c
	return c, nil
}

// NewRootCommand returns the berth command tree reading os.Stdin and writing
// os.Stdout/os.Stderr. extra commands (the daemon) are added at the top
// level. Run it with Execute to get docker's error output and exit codes.
func NewRootCommand(extra ...*cobra.Command) *cobra.Command {
	return newRootCommand(&env{in: os.Stdin, out: os.Stdout, err: os.Stderr, now: time.Now}, extra...)
}

func newRootCommand(e *env, extra ...*cobra.Command) *cobra.Command {
	root := &cobra.Command{
		Use:           "berth [OPTIONS] COMMAND [ARG...]",
		Short:         "Docker-style container bridge networking",
		Version:       fmt.Sprintf("%s, build %s", version.Version, version.Commit()),
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          noArgs,
		RunE:          showHelp,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			level := slog.LevelInfo
			if e.debug {
				level = slog.LevelDebug
			}
			e.log = slog.New(slog.NewTextHandler(e.err, &slog.HandlerOptions{Level: level}))
		},
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: true},
	}
	root.SetIn(e.in)
	root.SetOut(e.out)
	root.SetErr(e.err)
	root.SetVersionTemplate("berth version {{.Version}}\n")
	root.SetFlagErrorFunc(flagError)
	root.SetUsageTemplate(usageTemplate)
	root.SetHelpTemplate(helpTemplate)
	// Global options before the command only, as docker's: `berth ps -H x`
	// is an unknown flag, not another daemon.
	root.TraverseChildren = true
	gf := root.Flags()
	gf.StringVarP(&e.host, "host", "H", "", "Daemon socket to connect to (default $"+client.HostEnv+" or "+client.DefaultHost+")")
	gf.BoolVarP(&e.debug, "debug", "D", false, "Enable debug mode")

	root.AddCommand(
		newVersionCommand(e),
		newInfoCommand(e),
		newNetworkCommand(e),
		newRunCommand(e),
		newCreateCommand(e),
		newStartCommand(e),
		newPsCommand(e),
		newInspectCommand(e),
		newExecCommand(e),
		newStopCommand(e),
		newKillCommand(e),
		newRmCommand(e),
		newRenameCommand(e),
		newLogsCommand(e),
		newPortCommand(e),
		newImportCommand(e),
		newImagesCommand(e),
		newRmiCommand(e),
		newImageCommand(e),
		newContainerCommand(e),
		newExplainCommand(e),
	)
	root.AddCommand(extra...)
	// docker's usage lines name their flags themselves ("[OPTIONS]").
	visitCommands(root, func(c *cobra.Command) { c.DisableFlagsInUseLine = true })
	return root
}

func visitCommands(c *cobra.Command, fn func(*cobra.Command)) {
	fn(c)
	for _, sub := range c.Commands() {
		visitCommands(sub, fn)
	}
}

// Execute runs root with os.Args (or what SetArgs gave it), prints a
// failure the way docker does (the bare message on stderr) and returns the
// exit code: a StatusError's code, 1 for any other error, 0 on success.
func Execute(root *cobra.Command) int {
	err := root.ExecuteContext(context.Background())
	if err == nil {
		return 0
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintln(root.ErrOrStderr(), msg)
	}
	return ExitCode(err)
}

// ExitCode is the process exit code for err, as docker computes it.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var se StatusError
	if errors.As(err, &se) && se.StatusCode != 0 {
		return se.StatusCode
	}
	return 1
}

// StatusError carries an exit code and the message to print (if any).
type StatusError struct {
	Cause      error
	Status     string
	StatusCode int
}

func (e StatusError) Error() string {
	if e.Status != "" {
		return e.Status
	}
	if e.Cause != nil {
		return e.Cause.Error()
	}
	return ""
}

func (e StatusError) Unwrap() error { return e.Cause }

// flagError is docker's answer to a bad flag: the parser's message, the
// usage line, a pointer to --help, and exit code 125.
func flagError(cmd *cobra.Command, err error) error {
	return StatusError{
		Cause:      err,
		Status:     fmt.Sprintf("%s\n\nUsage:  %s\n\nRun '%s --help' for more information", err, cmd.UseLine(), cmd.CommandPath()),
		StatusCode: 125,
	}
}

func showHelp(cmd *cobra.Command, _ []string) error {
	cmd.SetOut(cmd.ErrOrStderr())
	return cmd.Help()
}
