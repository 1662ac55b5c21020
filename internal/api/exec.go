package api

import (
	"context"
	"net/http"

	ctypes "github.com/docker/docker/api/types/container"

	"github.com/berth-net/berth/internal/errdefs"
)

func (s *Server) createExec(w http.ResponseWriter, r *http.Request) error {
	var body ctypes.ExecOptions
	if err := readJSON(w, r, &body); err != nil {
		return err
	}
	if len(body.Cmd) == 0 {
		return errdefs.Invalid("No exec command specified")
	}
	if body.DetachKeys != "" {
		if _, err := detachKeys(body.DetachKeys); err != nil {
			return errdefs.Invalid("Invalid escape keys (%s) provided", body.DetachKeys) // moby's ContainerExecCreate
		}
	}
	cfg := ExecConfig{
		Cmd:          body.Cmd,
		Env:          body.Env,
		User:         body.User,
		WorkingDir:   body.WorkingDir,
		Tty:          body.Tty,
		AttachStdin:  body.AttachStdin,
		AttachStdout: body.AttachStdout,
		AttachStderr: body.AttachStderr,
		Privileged:   body.Privileged,
	}
	if body.ConsoleSize != nil && body.Tty && !versionBefore(r, "1.42") {
		cfg.ConsoleSize = *body.ConsoleSize
	}
	id, err := s.backend.CreateExec(r.Context(), r.PathValue("id"), cfg)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, ctypes.ExecCreateResponse{ID: id})
}

// startExec runs an exec. Attached, it hijacks the connection and closes it
// only after StartExec returned, i.e. after the process was reaped, so the
// exit code the CLI asks for next is final.
func (s *Server) startExec(w http.ResponseWriter, r *http.Request) error {
	var body ctypes.ExecStartOptions
	if err := readJSON(w, r, &body); err != nil {
		return err
	}
	id := r.PathValue("id")
	info, err := s.backend.InspectExec(r.Context(), id)
	if err != nil {
		return err // 404 now, while we can still send a status
	}
	if info.Running {
		return errdefs.Conflict("exec %s is already running", id)
	}
	if body.Detach {
		if err := s.backend.StartExec(r.Context(), id, true, Streams{}); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
	h, err := s.hijack(w, r, !body.Tty)
	if err != nil {
		return err
	}
	defer h.close(s)
	streams := h.streams(info.Config.AttachStdin, info.Config.AttachStdout, info.Config.AttachStderr && !body.Tty)
	// The process is not tied to the client: like moby, a client that goes
	// away does not kill it; StartExec still returns after the reap.
	if err := s.backend.StartExec(context.WithoutCancel(r.Context()), id, false, streams); err != nil {
		s.log.Warn("exec failed", "exec", id, "err", err)
		h.reportOnStdout(err)
	}
	return nil
}

func (s *Server) resizeExec(w http.ResponseWriter, r *http.Request) error {
	h, wd, err := resizeSize(r)
	if err != nil {
		return err
	}
	if err := s.backend.ResizeExec(r.Context(), r.PathValue("id"), h, wd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// execInspect is moby's server-side exec inspect shape (the key is "ID").
type execInspect struct {
	ID            string `json:"ID"`
	Running       bool
	ExitCode      *int
	ProcessConfig execProcessConfig
	OpenStdin     bool
	OpenStderr    bool
	OpenStdout    bool
	CanRemove     bool
	ContainerID   string
	DetachKeys    []byte
	Pid           int
}

type execProcessConfig struct {
	Tty        bool     `json:"tty"`
	Entrypoint string   `json:"entrypoint"`
	Arguments  []string `json:"arguments"`
	Privileged *bool    `json:"privileged,omitempty"`
	User       string   `json:"user,omitempty"`
}

func (s *Server) inspectExec(w http.ResponseWriter, r *http.Request) error {
	info, err := s.backend.InspectExec(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	pc := execProcessConfig{Tty: info.Config.Tty, Arguments: []string{}, User: info.Config.User}
	if len(info.Config.Cmd) > 0 {
		pc.Entrypoint = info.Config.Cmd[0]
		pc.Arguments = append(pc.Arguments, info.Config.Cmd[1:]...)
	}
	privileged := info.Config.Privileged
	pc.Privileged = &privileged
	return writeJSON(w, http.StatusOK, execInspect{
		ID:            info.ID,
		Running:       info.Running,
		ExitCode:      info.ExitCode,
		ProcessConfig: pc,
		OpenStdin:     info.Config.AttachStdin,
		OpenStderr:    info.Config.AttachStderr,
		OpenStdout:    info.Config.AttachStdout,
		ContainerID:   info.ContainerID,
		Pid:           info.Pid,
	})
}
