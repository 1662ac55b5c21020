package cli

import (
	"errors"
	"fmt"

	"github.com/docker/docker/api/types/container"
	"github.com/spf13/cobra"

	"github.com/berth-net/berth/internal/client"
)

type execOptions struct {
	interactive, tty, detach, privileged bool
	user, workdir, detachKeys            string
	env                                  listFlag
	envFiles                             []string
}

func newExecCommand(e *env) *cobra.Command {
	o := &execOptions{}
	o.env.validate = validateEnv
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Execute a command in a running container",
		Args:  requiresMinArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runExec(cmd, e, o, args[0], args[1:])
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	f.BoolVarP(&o.interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	f.BoolVarP(&o.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	f.BoolVarP(&o.detach, "detach", "d", false, "Detached mode: run command in the background")
	f.StringVarP(&o.user, "user", "u", "", `Username or UID (format: "<name|uid>[:<group|gid>]")`)
	f.BoolVar(&o.privileged, "privileged", false, "Give extended privileges to the command")
	f.VarP(&o.env, "env", "e", "Set environment variables")
	listVarP(f, &o.envFiles, "env-file", "", "Read in a file of environment variables")
	f.StringVarP(&o.workdir, "workdir", "w", "", "Working directory inside the container")
	f.StringVar(&o.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}

func (o *execOptions) request(cmdline []string) (container.ExecOptions, error) {
	var env []string
	for _, f := range o.envFiles {
		lines, err := readEnvFile(f)
		if err != nil {
			return container.ExecOptions{}, err
		}
		env = append(env, lines...)
	}
	req := container.ExecOptions{
		User:       o.user,
		Privileged: o.privileged,
		Tty:        o.tty,
		Env:        append(env, o.env.list...),
		WorkingDir: o.workdir,
		Cmd:        cmdline,
		Detach:     o.detach, //nolint:staticcheck // deprecated, but docker still sends it
	}
	if !o.detach {
		req.AttachStdout, req.AttachStderr = true, true
		req.AttachStdin = o.interactive
	}
	return req, nil
}

// runExec is docker exec: check the container, create the exec, start it
// attached (or detached), and exit with the process's exit code, read
// from GET /exec/{id}/json once the stream has closed.
func runExec(cmd *cobra.Command, e *env, o *execOptions, ref string, cmdline []string) error {
	ctx := cmd.Context()
	req, err := o.request(cmdline)
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	if _, _, err := c.ContainerInspect(ctx, ref); err != nil {
		return err
	}
	keys, err := detachKeys(o.detachKeys)
	if err != nil {
		return err
	}
	tm := detectTerminal(e.in, e.out)
	if !o.detach && req.Tty && req.AttachStdin && !tm.inTTY {
		return errors.New("the input device is not a TTY")
	}
	if req.Tty {
		h, w := tm.size()
		req.ConsoleSize = &[2]uint{h, w}
	}
	id, err := c.ExecCreate(ctx, ref, req)
	if err != nil {
		return err
	}
	if o.detach {
		return c.ExecStartDetached(ctx, id, req.Tty)
	}
	conn, err := c.ExecAttach(ctx, id, req.Tty, req.ConsoleSize)
	if err != nil {
		return err
	}
	defer conn.Close()
	s := streams{stdout: e.out, stderr: e.err, tty: req.Tty, detachKeys: keys}
	if req.Tty {
		s.stderr = e.out
	}
	if req.AttachStdin {
		s.stdin = e.in
	}
	if req.Tty {
		err = pumpTTY(ctx, conn, s, tm, func(h, w uint) error { return c.ExecResize(ctx, id, h, w) })
	} else {
		// No raw terminal without -t: the line discipline stays, and
		// with it ^D's end of input and ^C.
		err = pump(ctx, conn, s)
	}
	var sysErr *client.SystemError
	if errors.As(err, &sysErr) {
		// The daemon could not run the command; it says why in-stream and
		// the exit code (126/127) tells the script.
		fmt.Fprintln(e.err, sysErr.Message)
	} else if err != nil {
		return err
	}
	info, err := c.ExecInspect(ctx, id)
	if err != nil {
		return err
	}
	if info.ExitCode != 0 {
		return StatusError{StatusCode: info.ExitCode}
	}
	return nil
}
