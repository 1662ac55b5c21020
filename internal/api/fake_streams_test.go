package api

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/berth-net/berth/internal/build"
	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/reference"
	"github.com/berth-net/berth/internal/runtime/image"
)

// The fake's waits, streams, execs and images.

func (f *fakeBackend) WaitContainer(ctx context.Context, ref, cond string) (<-chan WaitResult, error) {
	if _, err := f.Container(ctx, ref); err != nil {
		return nil, err
	}
	if f.wait != nil {
		return f.wait(ctx, ref, cond)
	}
	return exitsWith(0)(ctx, ref, cond)
}

// exitsWith is a fakeBackend.wait whose container has exited with code.
func exitsWith(code int) func(context.Context, string, string) (<-chan WaitResult, error) {
	return func(context.Context, string, string) (<-chan WaitResult, error) {
		ch := make(chan WaitResult, 1)
		ch <- WaitResult{StatusCode: code}
		return ch, nil
	}
}

func (f *fakeBackend) AttachContainer(_ context.Context, ref string) (func(context.Context, Streams) error, error) {
	return func(ctx context.Context, s Streams) error {
		if f.attach != nil {
			return f.attach(ctx, ref, s)
		}
		return nil
	}, nil
}

func (f *fakeBackend) ResizeContainer(ctx context.Context, ref string, h, w uint) error {
	_, err := f.Container(ctx, ref)
	return err
}

func (f *fakeBackend) ContainerLogs(ctx context.Context, ref string, o LogsOptions, stdout, stderr io.Writer) error {
	if f.logs != nil {
		return f.logs(ctx, ref, o, stdout, stderr)
	}
	_, _ = io.WriteString(stdout, "out\n")
	_, _ = io.WriteString(stderr, "err\n")
	return nil
}

func (f *fakeBackend) CheckLogs(ctx context.Context, ref string, o LogsOptions) error {
	_, err := f.Container(ctx, ref)
	return err
}

func (f *fakeBackend) CreateExec(ctx context.Context, ref string, cfg ExecConfig) (string, error) {
	c, err := f.Container(ctx, ref)
	if err != nil {
		return "", err
	}
	if !c.Running() {
		return "", errdefs.Conflict("container %s is not running", c.ID)
	}
	f.mutated("CreateExec %s", ref)
	id := hexID(fmt.Sprintf("e%d", len(f.execs)+1))
	f.mu.Lock()
	f.execs[id] = &ExecInfo{ID: id, ContainerID: c.ID, Config: cfg}
	f.mu.Unlock()
	return id, nil
}

func (f *fakeBackend) StartExec(ctx context.Context, id string, detach bool, s Streams) error {
	f.mutated("StartExec %s %v", id, detach)
	if f.startExec != nil {
		return f.startExec(ctx, id, detach, s)
	}
	return nil
}

func (f *fakeBackend) ResizeExec(ctx context.Context, id string, h, w uint) error {
	_, err := f.InspectExec(ctx, id)
	return err
}

func (f *fakeBackend) InspectExec(_ context.Context, id string) (ExecInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.execs[id]
	if !ok {
		return ExecInfo{}, errdefs.NotFound("No such exec instance: %s", id)
	}
	return *e, nil
}

func (f *fakeBackend) setExitCode(id string, code int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.execs[id].ExitCode = &code
}

func (f *fakeBackend) ImportImage(_ context.Context, r io.Reader, repo, tag, message string, changes []string) (*image.Image, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	ref, err := reference.WithTag(repo, tag)
	if err != nil {
		return nil, err
	}
	if len(changes) > 0 {
		f.mutated("ImportImage %s %q %q", ref, message, changes)
	} else {
		f.mutated("ImportImage %s %q", ref, message)
	}
	f.record(func(r *fakeRecord) { r.ImportedBody = b })
	return &image.Image{ID: "sha256:" + hexID("1d")}, nil
}

// BuildImage reads the context, says a step, warns, and ends as the
// Dockerfile name asks: "missing" fails before any output, "fail" after
// it, as a RUN whose command failed.
func (f *fakeBackend) BuildImage(_ context.Context, body io.Reader, opts BuildOptions, out build.Output) (string, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		return "", err
	}
	f.mutated("BuildImage")
	f.record(func(r *fakeRecord) { r.Build, r.BuildBody = opts, b })
	if opts.Dockerfile == "missing" {
		return "", errdefs.Invalid("Cannot locate specified Dockerfile: missing")
	}
	id := "sha256:" + hexID("b1")
	fmt.Fprint(out.Stdout, "Step 1/1 : FROM busybox\n")
	fmt.Fprint(out.Stderr, "careful\n")
	if opts.Dockerfile == "fail" {
		return "", &build.StepError{Msg: "The command '/bin/sh -c false' returned a non-zero code: 3", Code: 3}
	}
	if out.Aux != nil {
		if err := out.Aux(id); err != nil {
			return "", err
		}
	}
	return id, nil
}

func (f *fakeBackend) CommitContainer(_ context.Context, ref string, opts CommitOptions) (string, error) {
	if _, err := f.Container(context.Background(), ref); err != nil {
		return "", err
	}
	f.mutated("CommitContainer %s", ref)
	f.record(func(r *fakeRecord) { r.Commit, r.CommitRef = opts, ref })
	return "sha256:" + hexID("c0"), nil
}

func (f *fakeBackend) Images(context.Context) ([]*image.Image, error) {
	return append([]*image.Image(nil), f.images...), nil
}

func (f *fakeBackend) Image(_ context.Context, ref string) (*image.Image, error) {
	for _, img := range f.images {
		for _, t := range img.RepoTags {
			if t == ref || strings.TrimSuffix(t, ":latest") == ref {
				return img, nil
			}
		}
		if img.ID == ref {
			return img, nil
		}
	}
	return nil, errdefs.NotFound("No such image: %s", ref)
}

func (f *fakeBackend) RemoveImage(ctx context.Context, ref string, force, noPrune bool) ([]string, []string, error) {
	img, err := f.Image(ctx, ref)
	if err != nil {
		return nil, nil, err
	}
	if noPrune {
		f.mutated("RemoveImage %s noprune", ref)
	} else {
		f.mutated("RemoveImage %s", ref)
	}
	return []string{"busybox:latest"}, []string{img.ID}, nil
}

var _ Backend = (*fakeBackend)(nil)
