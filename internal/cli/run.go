package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/spf13/cobra"

	"github.com/berth-net/berth/internal/client"
	"github.com/berth-net/berth/internal/errdefs"
)

func newRunCommand(e *env) *cobra.Command {
	var (
		detach   bool
		sigProxy bool
		keysFlag string
		o        *containerOptions
	)
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := o.createRequest(cmd.Flags(), args[0], cmdArgs(args))
			if err != nil {
				return StatusError{Cause: err, Status: withHelp(cmd, err), StatusCode: 125}
			}
			keys, err := detachKeys(keysFlag)
			if err != nil {
				return StatusError{Cause: err, Status: withHelp(cmd, err), StatusCode: 125}
			}
			return runContainer(cmd, e, o, req, detach, keys, sigProxy)
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&detach, "detach", "d", false, "Run container in background and print container ID")
	fs.StringVar(&keysFlag, "detach-keys", "", "Override the key sequence for detaching a container")
	fs.BoolVar(&sigProxy, "sig-proxy", true, "Proxy received signals to the process")
	fs.Bool("help", false, "Print usage")
	o = addContainerFlags(fs)
	return cmd
}

func newCreateCommand(e *env) *cobra.Command {
	var o *containerOptions
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := o.createRequest(cmd.Flags(), args[0], cmdArgs(args))
			if err != nil {
				return StatusError{Cause: err, Status: withHelp(cmd, err), StatusCode: 125}
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			id, err := createContainer(cmd.Context(), e, c, o.name, req)
			if err != nil {
				return err
			}
			fmt.Fprintln(e.out, id)
			return nil
		},
	}
	cmd.Flags().Bool("help", false, "Print usage")
	o = addContainerFlags(cmd.Flags())
	return cmd
}

// cmdArgs is the command after the image, nil when there is none so that
// the image's default applies.
func cmdArgs(args []string) []string {
	if len(args) < 2 {
		return nil
	}
	return args[1:]
}

// withHelp is docker run's way of presenting an error: the binary's name,
// the message, and a pointer to --help.
func withHelp(cmd *cobra.Command, err error) string {
	return fmt.Sprintf("%s: %s\n\nRun '%s --help' for more information", cmd.Root().Name(), err, cmd.CommandPath())
}

// runStatusError gives a failure of create or start docker's exit code:
// 127 when the command was not found, 126 when it could not be run, 125
// for anything else the daemon refused.
func runStatusError(cmd *cobra.Command, err error) error {
	msg := err.Error()
	code := 125
	switch {
	case strings.Contains(msg, "executable file not found") || strings.Contains(msg, "no such file or directory"):
		code = 127
	case strings.Contains(msg, "permission denied") || strings.Contains(msg, "is a directory"):
		code = 126
	}
	return StatusError{Cause: err, Status: withHelp(cmd, err), StatusCode: code}
}

// createContainer creates the container and prints the daemon's warnings.
// berth has no registry to pull from, so a missing image is reported the
// way docker reports it before it would pull, then as the error.
func createContainer(ctx context.Context, e *env, c *client.Client, name string, req container.CreateRequest) (string, error) {
	resp, err := c.ContainerCreate(ctx, name, req)
	if err != nil {
		if errdefs.Is(err, errdefs.KindNotFound) && strings.Contains(err.Error(), "No such image") {
			fmt.Fprintf(e.err, "Unable to find image '%s' locally\n", withDefaultTag(req.Image))
		}
		return "", err
	}
	for _, w := range resp.Warnings {
		fmt.Fprintln(e.err, "WARNING:", w)
	}
	return resp.ID, nil
}

// withDefaultTag adds ":latest" to an image reference without tag or digest.
func withDefaultTag(ref string) string {
	if strings.Contains(ref, "@") {
		return ref
	}
	last := ref[strings.LastIndex(ref, "/")+1:]
	if strings.Contains(last, ":") {
		return ref
	}
	return ref + ":latest"
}

// runContainer is docker run after option parsing: create, attach (unless
// detached), wait, start — in that order, so that no output is lost and the
// exit status cannot be missed — then stream until the container exits.
func runContainer(cmd *cobra.Command, e *env, o *containerOptions, req container.CreateRequest, detach bool, keys []byte, sigProxy bool) error {
	ctx := cmd.Context()
	cfg := req.Config
	tm := detectTerminal(e.in, e.out)
	if detach {
		cfg.AttachStdin, cfg.AttachStdout, cfg.AttachStderr, cfg.StdinOnce = false, false, false, false
	} else if cfg.Tty && cfg.AttachStdin && !tm.inTTY {
		return errors.New("the input device is not a TTY")
	}
	if cfg.Tty && tm.outTTY {
		h, w := tm.size()
		req.HostConfig.ConsoleSize = [2]uint{h, w}
	}
	c, err := e.client()
	if err != nil {
		return runStatusError(cmd, err)
	}
	id, err := createContainer(ctx, e, c, o.name, req)
	if err != nil {
		return runStatusError(cmd, err)
	}

	var conn *client.HijackedConn
	if !detach {
		conn, err = c.ContainerAttach(ctx, id, client.AttachOptions{Stdin: cfg.AttachStdin, Stdout: true, Stderr: true})
		if err != nil {
			return err
		}
		defer conn.Close()
	}

	waitCtx, cancelWait := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWait()
	condition := "next-exit"
	if o.autoRemove {
		condition = "removed"
	}
	statusC, waitErr := c.ContainerWait(waitCtx, id, condition)
	if waitErr != nil {
		fmt.Fprintln(e.err, "error waiting for container:", waitErr)
	}

	if err := c.ContainerStart(ctx, id); err != nil {
		if o.autoRemove && statusC != nil {
			<-statusC
		}
		return runStatusError(cmd, err)
	}
	if detach {
		fmt.Fprintln(e.out, id)
		return nil
	}
	streamErr := streamContainer(ctx, e, c, conn, id, cfg, tm, keys, sigProxy)
	if detached(streamErr) {
		return nil // the detach keys: the container runs on, as docker run -it
	}
	status := waitStatus(e, statusC)
	if streamErr != nil {
		return streamErr
	}
	if status != 0 {
		return StatusError{StatusCode: status}
	}
	return nil
}

// streamContainer moves the attached streams until the container's output
// ends; without a tty it forwards the signals the CLI gets to the
// container unless sigProxy is off (forwardSignals; with a tty, ^C
// reaches it as a byte).
func streamContainer(ctx context.Context, e *env, c *client.Client, conn *client.HijackedConn, id string, cfg *container.Config, tm terminal, keys []byte, sigProxy bool) error {
	s := streams{stdout: e.out, stderr: e.err, tty: cfg.Tty, detachKeys: keys}
	if cfg.Tty {
		s.stderr = e.out
	}
	if cfg.AttachStdin {
		s.stdin = e.in
	}
	if cfg.Tty {
		return pumpTTY(ctx, conn, s, tm, func(h, w uint) error { return c.ContainerResize(ctx, id, h, w) })
	}
	if sigProxy { // --sig-proxy=false leaves the CLI's signals its own
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		forwardSignals(sctx, func(sig string) { _ = c.ContainerKill(context.WithoutCancel(ctx), id, sig) })
	}
	return pump(ctx, conn, s)
}

// waitStatus reads the container's exit status; 125 if waiting failed, as
// docker reports it.
func waitStatus(e *env, statusC <-chan client.WaitResult) int {
	if statusC == nil {
		return 125
	}
	r := <-statusC
	if r.Err != nil {
		fmt.Fprintln(e.err, "Error waiting for container:", r.Err)
		return 125
	}
	return r.StatusCode
}

func newStartCommand(e *env) *cobra.Command {
	var (
		attach, interactive bool
		keysFlag            string
	)
	cmd := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			if attach || interactive {
				if len(args) > 1 {
					return errors.New("you cannot start and attach multiple containers at once")
				}
				keys, err := detachKeys(keysFlag)
				if err != nil {
					return err
				}
				return startAttached(cmd.Context(), e, c, args[0], interactive, keys)
			}
			var failed []string
			for _, ref := range args {
				if err := c.ContainerStart(cmd.Context(), ref); err != nil {
					fmt.Fprintln(e.err, err)
					failed = append(failed, ref)
					continue
				}
				fmt.Fprintln(e.out, ref)
			}
			if len(failed) > 0 {
				return fmt.Errorf("Error: failed to start containers: %s", strings.Join(failed, ", "))
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&attach, "attach", "a", false, "Attach STDOUT/STDERR and forward signals")
	cmd.Flags().BoolVarP(&interactive, "interactive", "i", false, "Attach container's STDIN")
	cmd.Flags().StringVar(&keysFlag, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}

// startAttached is start -a: attach, wait, start, stream, exit with the
// container's status.
func startAttached(ctx context.Context, e *env, c *client.Client, ref string, interactive bool, keys []byte) error {
	info, _, err := c.ContainerInspect(ctx, ref)
	if err != nil {
		return err
	}
	cfg := *info.Config
	cfg.AttachStdin = interactive && cfg.OpenStdin
	conn, err := c.ContainerAttach(ctx, info.ID, client.AttachOptions{Stdin: cfg.AttachStdin, Stdout: true, Stderr: true})
	if err != nil {
		return err
	}
	defer conn.Close()
	waitCtx, cancelWait := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWait()
	statusC, err := c.ContainerWait(waitCtx, info.ID, "next-exit")
	if err != nil {
		fmt.Fprintln(e.err, "error waiting for container:", err)
	}
	if err := c.ContainerStart(ctx, info.ID); err != nil {
		return err
	}
	if err := streamContainer(ctx, e, c, conn, info.ID, &cfg, detectTerminal(e.in, e.out), keys, true); detached(err) {
		return nil
	} else if err != nil {
		return err
	}
	if status := waitStatus(e, statusC); status != 0 {
		return StatusError{StatusCode: status}
	}
	return nil
}
