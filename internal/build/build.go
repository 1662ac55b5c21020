// Package build runs a Dockerfile as moby's legacy builder does (what
// docker build uses without buildx): each instruction a step whose
// result is an image (a config-only child, a RUN container committed, or
// files copied over the previous image), cached by the step and its
// parent, stages and COPY --from, ARG and --build-arg, ONBUILD triggers,
// and moby's output ("Step n/m : …", " ---> <id>"). The images,
// containers and trees are the Backend's; this package decides what each
// step is and makes the files a COPY adds.
package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-net/berth/internal/dockerfile"
	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/runtime/image"
)

// Options are a build request's, as docker build sends them.
type Options struct {
	// Dockerfile is its path in the context ("Dockerfile" if empty).
	Dockerfile string
	BuildArgs  map[string]*string
	// Labels are --label's, added to the last stage as LABEL steps.
	Labels map[string]string
	Target string
	// NoCache builds every step; Remove removes a RUN's container once it
	// succeeded, ForceRemove also when it failed.
	NoCache, Remove, ForceRemove bool
	// Platform is --platform: only the host's is built.
	Platform string
	// Pull is --pull: berth pulls nothing, and says so in the output.
	Pull bool
	// CacheFrom is --cache-from: the images whose ancestors alone may
	// be cache hits (the backend's Cached applies it).
	CacheFrom []string
}

// Output is where a build writes: its stdout and stderr lines (moby's
// "stream" messages) and each stage's image ID (the "aux" message).
type Output struct {
	Stdout, Stderr io.Writer
	Aux            func(id string) error
}

// Image is an image a build starts from or made.
type Image struct {
	ID     string
	Config *image.Config
	// Root is its tree ("" for scratch).
	Root string
}

// Step is what one step makes: a child of Parent ("" for scratch) with
// Config, its history's CreatedBy, Author (MAINTAINER) and the cache key
// later builds find it by.
type Step struct {
	Parent    string
	Config    *image.Config
	CreatedBy string
	Author    string
	Key       string
}

// RunSpec is a RUN step's container.
type RunSpec struct {
	Cmd        []string
	Env        []string
	User       string
	WorkingDir string
	// Remove and ForceRemove: Options'.
	Remove, ForceRemove bool
}

// ExitError is a RUN whose command failed.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("exit code %d", e.Code) }

// Backend makes a build's images and containers.
type Backend interface {
	// Image is a local image, by name or ID.
	Image(ctx context.Context, ref string) (*Image, error)
	// Cached is the newest image a step with key made, or nil.
	Cached(ctx context.Context, key string) (*Image, error)
	// Derive records s's image, its parent's tree and layers with a
	// history entry that made no layer.
	Derive(ctx context.Context, s Step) (*Image, error)
	// Run runs r in a container of s.Parent, its output to out as it
	// comes (with moby's " ---> Running in <id>" before and, once removed,
	// " ---> Removed intermediate container <id>"), and commits it as
	// s's image; a command that fails is an *ExitError.
	Run(ctx context.Context, s Step, r RunSpec, out Output) (*Image, error)
	// Copy makes s's image: its parent's tree with what fill writes into
	// the empty directory it is given laid over it, as a layer is.
	Copy(ctx context.Context, s Step, fill func(upper string) error) (*Image, error)
}

// Build runs the Dockerfile in the build context at dir (the client's
// context, unpacked) and returns the ID of the image it made.
func Build(ctx context.Context, be Backend, dir string, opts Options, out Output) (string, error) {
	name := opts.Dockerfile
	if name == "" {
		name = "Dockerfile"
	}
	src, name, err := readDockerfile(dir, name, opts.Dockerfile == "")
	if err != nil {
		return "", err
	}
	if err := removeIgnoredBuildFiles(dir, name); err != nil {
		return "", err
	}
	f, err := dockerfile.Parse(strings.NewReader(string(src)))
	if err != nil {
		return "", errdefs.Invalid("%w", err)
	}
	if len(f.Nodes) == 0 {
		// Comments and blank lines alone: buildkit's parser's words,
		// wrapped as moby's readAndParseDockerfile wraps them.
		return "", errdefs.Invalid("failed to parse %s: file with no instructions", name)
	}
	meta, stages, err := dockerfile.Stages(f)
	if err != nil {
		return "", errdefs.Invalid("%w", err)
	}
	if err := precheck(meta, stages, f.Escape); err != nil {
		return "", errdefs.Invalid("%w", err)
	}
	if opts.Target != "" {
		i := slices.IndexFunc(stages, func(s dockerfile.Stage) bool { return s.Name == strings.ToLower(opts.Target) })
		if i < 0 {
			return "", errdefs.Invalid("target stage %q could not be found", opts.Target)
		}
		stages = stages[:i+1]
	}
	if len(stages) > 0 && len(opts.Labels) > 0 {
		last := &stages[len(stages)-1]
		keys := slices.Sorted(maps.Keys(opts.Labels))
		for _, k := range keys {
			last.Commands = append(last.Commands, dockerfile.Node{Cmd: "label", Args: quote(k) + "=" + quote(opts.Labels[k]),
				Original: "LABEL " + k + "=" + opts.Labels[k]})
		}
	}
	for _, w := range f.Warnings {
		fmt.Fprintln(out.Stderr, w)
	}
	if opts.Pull {
		fmt.Fprintln(out.Stdout, "[Warning] berth does not pull images: --pull builds from the base images here")
	}
	if err := checkPlatform(opts.Platform); err != nil {
		return "", err
	}
	b := &builder{be: be, ctx: ctx, dir: dir, opts: opts, out: out, lex: dockerfile.Lex{Escape: f.Escape},
		args: newBuildArgs(opts.BuildArgs), stages: map[string]*Image{}}
	b.total = len(meta) + len(stages)
	for _, s := range stages {
		b.total += len(s.Commands)
	}
	for _, n := range meta {
		b.printStep(n.Original)
		if err := b.metaArg(n); err != nil {
			return "", err
		}
	}
	var st *state
	for _, stage := range stages {
		if stage.Name != "" && b.stages[stage.Name] != nil {
			return "", errdefs.Invalid("%s stage name already used", stage.Name)
		}
		b.printStep(stage.From.Original)
		if st, err = b.from(stage); err != nil {
			return "", err
		}
		b.done(st)
		for _, n := range stage.Commands {
			if err := ctx.Err(); err != nil {
				fmt.Fprint(out.Stdout, "Build cancelled\n")
				return "", errors.New("Build cancelled")
			}
			b.printStep(n.Original)
			if err := st.dispatch(n); err != nil {
				return "", err
			}
			b.done(st)
		}
		if st.imageID != "" && out.Aux != nil {
			if err := out.Aux(st.imageID); err != nil {
				return "", err
			}
		}
		maps.Copy(b.args.referenced, st.args.referenced)
		img := &Image{ID: st.imageID, Config: st.cfg, Root: st.root}
		if stage.Name != "" {
			b.stages[stage.Name] = img
		}
		b.flat = append(b.flat, img)
	}
	b.args.warnUnused(out.Stdout)
	if st == nil || st.imageID == "" {
		return "", errdefs.Invalid("No image was generated. Is your Dockerfile empty?")
	}
	return st.imageID, nil
}

// quote is s in single quotes, for the lexer to take as it is.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// checkPlatform refuses a platform that is not the host's: berth runs
// and builds for the host only.
func checkPlatform(p string) error {
	if p == "" {
		return nil
	}
	os, arch, _ := strings.Cut(strings.ToLower(p), "/")
	arch, _, _ = strings.Cut(arch, "/")
	if os != "linux" || (arch != "" && arch != runtime.GOARCH) {
		return errdefs.Invalid("berth builds for linux/%s only, not %s", runtime.GOARCH, p)
	}
	return nil
}

// readDockerfile reads the Dockerfile name in the context at dir, its
// links resolved inside the context; the default name falls back to
// "dockerfile", as moby's.
func readDockerfile(dir, name string, isDefault bool) ([]byte, string, error) {
	names := []string{name}
	if isDefault {
		names = append(names, strings.ToLower(name))
	}
	for _, n := range names {
		rel, err := inScope(dir, n, true)
		if err != nil {
			return nil, "", err
		}
		b, err := readRegular(filepath.Join(dir, rel))
		if err != nil {
			continue
		}
		if len(b) == 0 {
			return nil, "", errdefs.Invalid("the Dockerfile (%s) cannot be empty", n)
		}
		return b, n, nil
	}
	return nil, "", errdefs.Invalid("Cannot locate specified Dockerfile: %s", name)
}

type builder struct {
	be     Backend
	ctx    context.Context
	dir    string
	opts   Options
	out    Output
	lex    dockerfile.Lex
	args   *buildArgs
	stages map[string]*Image
	flat   []*Image
	step   int
	total  int
}

func (b *builder) printStep(original string) {
	b.step++
	fmt.Fprintf(b.out.Stdout, "Step %d/%d : %s\n", b.step, b.total, original)
}

func (b *builder) done(st *state) {
	fmt.Fprintf(b.out.Stdout, " ---> %s\n", image.ShortID(st.imageID))
}

// metaArg is an ARG before the first FROM: its value seen by FROM lines
// and by stages' ARGs of the same name.
func (b *builder) metaArg(n dockerfile.Node) error {
	if _, err := dockerfile.Flags(n); err != nil {
		return errdefs.Invalid("%v", err)
	}
	kvs, err := parseArgs(n, b.lex, lookupMap(b.args.allAllowed()))
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		b.args.add(kv.key, kv.value)
		b.args.meta[kv.key] = kv.value
	}
	return nil
}

func lookupMap(m map[string]string) dockerfile.Lookup {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

type argKV struct {
	key   string
	value *string
}

// parseArgs reads ARG's name[=default] words.
func parseArgs(n dockerfile.Node, lex dockerfile.Lex, lookup dockerfile.Lookup) ([]argKV, error) {
	words := dockerfile.SplitRaw(n.Args, lex.Escape)
	if len(words) == 0 {
		return nil, errdefs.Invalid("ARG requires at least one argument")
	}
	var out []argKV
	for _, w := range words {
		k, v, hasValue := strings.Cut(w, "=")
		if k == "" {
			return nil, errdefs.Invalid("ARG names can not be blank")
		}
		kv := argKV{key: k}
		if hasValue {
			pv, err := lex.ProcessWord(v, lookup)
			if err != nil {
				return nil, errdefs.Invalid("%v", err)
			}
			kv.value = &pv
		}
		out = append(out, kv)
	}
	return out, nil
}

// from begins a stage: its base image (a stage before it, scratch, or a
// local image), the base's config with a default PATH, and the base's
// ONBUILD triggers run.
func (b *builder) from(stage dockerfile.Stage) (*state, error) {
	meta := lookupMap(b.args.allMeta())
	if stage.Platform != "" {
		p, err := b.lex.ProcessWord(stage.Platform, meta)
		if err != nil {
			return nil, errdefs.Invalid("failed to process arguments for platform %s: %v", stage.Platform, err)
		}
		if err := checkPlatform(p); err != nil {
			return nil, err
		}
	}
	name, err := b.lex.ProcessWord(stage.Base, meta)
	if err != nil {
		return nil, errdefs.Invalid("%v", err)
	}
	if name == "" {
		return nil, errdefs.Invalid("base name (%s) should not be blank", stage.Base)
	}
	st := &state{b: b, name: stage.Name, args: b.args.forStage(), cfg: &image.Config{}}
	switch base := b.stages[strings.ToLower(name)]; {
	case base != nil:
		st.imageID, st.root, st.cfg = base.ID, base.Root, base.Config.Clone()
	case name == "scratch":
	default:
		img, err := b.be.Image(b.ctx, name)
		if err != nil {
			if errdefs.Is(err, errdefs.KindNotFound) {
				return nil, errdefs.NotFound("pull access denied for %s: berth does not pull images; docker load or docker import it first", name)
			}
			return nil, err
		}
		st.imageID, st.root = img.ID, img.Root
		if img.Config != nil {
			st.cfg = img.Config.Clone()
		}
	}
	if !slices.ContainsFunc(st.cfg.Env, func(e string) bool { return strings.HasPrefix(e, "PATH=") }) {
		st.cfg.Env = append(st.cfg.Env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	if triggers := st.cfg.OnBuild; len(triggers) > 0 {
		st.cfg.OnBuild = nil
		s := ""
		if len(triggers) > 1 {
			s = "s"
		}
		fmt.Fprintf(b.out.Stdout, "# Executing %d build trigger%s\n", len(triggers), s)
		for _, t := range triggers {
			f, err := dockerfile.Parse(strings.NewReader(t))
			if err != nil {
				return nil, errdefs.Invalid("%v", err)
			}
			if len(f.Nodes) != 1 {
				return nil, errdefs.Invalid("onbuild trigger should be a single expression")
			}
			if err := st.dispatch(f.Nodes[0]); err != nil {
				return nil, err
			}
		}
	}
	return st, nil
}

// state is a stage's as its steps run.
type state struct {
	b       *builder
	name    string
	imageID string
	root    string
	cfg     *image.Config
	cmdSet  bool
	author  string
	args    *buildArgs
	// busted: a step missed the cache, so the ones after it do too.
	busted bool
}

// lookup is what variables in the stage's instructions see: its ENV,
// and its ARGs that ENV does not set.
func (st *state) lookup() dockerfile.Lookup {
	return dockerfile.EnvLookup(append(slices.Clone(st.cfg.Env), st.args.filterAllowed(st.cfg.Env)...))
}

// configOnly are the instructions that change the config only.
var configOnly = map[string]bool{"cmd": true, "entrypoint": true, "env": true, "label": true, "expose": true,
	"user": true, "stopsignal": true, "volume": true, "healthcheck": true, "onbuild": true, "shell": true}

func (st *state) dispatch(n dockerfile.Node) error {
	switch {
	case n.Cmd == "from":
		return errdefs.Invalid("%v", &dockerfile.Error{Line: n.Line, Msg: "FROM isn't allowed as an ONBUILD trigger"})
	case configOnly[n.Cmd]:
		args := n.Args
		if n.Cmd == "healthcheck" || n.Cmd == "onbuild" {
			args = strings.TrimSpace(strings.Join(append(slices.Clone(n.Flags), n.Args), " "))
		} else if _, err := dockerfile.Flags(n); err != nil {
			return errdefs.Invalid("%v", err)
		}
		cfg := st.cfg.Clone()
		if n.Cmd == "healthcheck" && cfg.Healthcheck != nil && len(cfg.Healthcheck.Test) > 0 && cfg.Healthcheck.Test[0] != "NONE" {
			fmt.Fprintf(st.b.out.Stdout, "Note: overriding previous HEALTHCHECK: %v\n", cfg.Healthcheck.Test)
		}
		cmdSet := st.cmdSet
		msg, err := cfg.Apply(n.Cmd, args, st.b.lex, st.lookup(), &cmdSet)
		if err != nil {
			return err
		}
		if err := st.commit(cfg, msg); err != nil {
			return err
		}
		st.cmdSet = cmdSet
		return nil
	case n.Cmd == "maintainer":
		if _, err := dockerfile.Flags(n); err != nil {
			return errdefs.Invalid("%v", err)
		}
		st.author = n.Args
		return st.commit(st.cfg.Clone(), "MAINTAINER "+n.Args)
	case n.Cmd == "arg":
		if _, err := dockerfile.Flags(n); err != nil {
			return errdefs.Invalid("%v", err)
		}
		kvs, err := parseArgs(n, st.b.lex, st.lookup())
		if err != nil {
			return err
		}
		words := make([]string, len(kvs))
		for i, kv := range kvs {
			words[i] = kv.key
			if kv.value != nil {
				words[i] += "=" + *kv.value
			}
			st.args.add(kv.key, kv.value)
		}
		return st.commit(st.cfg.Clone(), "ARG "+strings.Join(words, " "))
	case n.Cmd == "workdir":
		return st.workdir(n)
	case n.Cmd == "run":
		return st.run(n)
	case n.Cmd == "copy" || n.Cmd == "add":
		return st.copy(n)
	}
	return errdefs.Invalid("%v", &dockerfile.Error{Line: n.Line, Msg: "unknown instruction: " + strings.ToUpper(n.Cmd)})
}

func flagName(f string) string {
	name, _, _ := strings.Cut(strings.TrimPrefix(f, "--"), "=")
	return name
}

// key is a step's cache key: its parent, what it did and the config it
// leaves, as moby's image cache compares a child's parent and container
// config.
func (st *state) key(createdBy string, cfg *image.Config) string {
	b, _ := json.Marshal(struct {
		Parent    string        `json:"parent"`
		CreatedBy string        `json:"createdBy"`
		Config    *image.Config `json:"config"`
		Author    string        `json:"author,omitempty"`
	}{st.imageID, createdBy, cfg, st.author})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// probe looks for the step in the cache: on a hit the stage goes on from
// the cached image.
func (st *state) probe(key string) (bool, error) {
	if st.b.opts.NoCache || st.busted {
		return false, nil
	}
	img, err := st.b.be.Cached(st.b.ctx, key)
	if err != nil || img == nil {
		st.busted = err == nil
		return false, err
	}
	fmt.Fprintln(st.b.out.Stdout, " ---> Using cache")
	st.imageID, st.root = img.ID, img.Root
	return true, nil
}

func (st *state) adopt(img *Image, cfg *image.Config) {
	st.imageID, st.root, st.cfg = img.ID, img.Root, cfg
}

// commit records a config-only step ("/bin/sh -c #(nop)  ENV A=b", as
// moby's two-argument comment reads joined).
func (st *state) commit(cfg *image.Config, msg string) error {
	createdBy := strings.Join(append(cfg.ShellOrDefault(), "#(nop) ", msg), " ")
	key := st.key(createdBy, cfg)
	if hit, err := st.probe(key); err != nil || hit {
		st.cfg = cfg
		return err
	}
	img, err := st.b.be.Derive(st.b.ctx, Step{Parent: st.imageID, Config: cfg, CreatedBy: createdBy, Author: st.author, Key: key})
	if err != nil {
		return err
	}
	st.adopt(img, cfg)
	return nil
}

// workdir sets the working directory and makes it in the image when it
// is not there (moby's ContainerCreateWorkdir: root's, mode 0755).
func (st *state) workdir(n dockerfile.Node) error {
	if _, err := dockerfile.Flags(n); err != nil {
		return errdefs.Invalid("%v", err)
	}
	cfg := st.cfg.Clone()
	cmdSet := st.cmdSet
	msg, err := cfg.Apply("workdir", n.Args, st.b.lex, st.lookup(), &cmdSet)
	if err != nil {
		return err
	}
	createdBy := strings.Join(append(cfg.ShellOrDefault(), "#(nop) "+msg), " ")
	key := st.key(createdBy, cfg)
	if hit, err := st.probe(key); err != nil || hit {
		st.cfg = cfg
		return err
	}
	s := Step{Parent: st.imageID, Config: cfg, CreatedBy: createdBy, Author: st.author, Key: key}
	var img *Image
	if st.root != "" && isDirIn(st.root, cfg.WorkingDir) {
		img, err = st.b.be.Derive(st.b.ctx, s)
	} else {
		img, err = st.b.be.Copy(st.b.ctx, s, func(upper string) error {
			c := &copier{ctx: st.b.ctx, lower: st.root, upper: upper}
			rel, err := c.destRel(cfg.WorkingDir)
			if err != nil {
				return err
			}
			err = c.mkdirAll(rel, 0o755, 0, 0)
			if nd := (*NotDirError)(nil); errors.As(err, &nd) && nd.Path == "/"+rel {
				// moby's SetupWorkingDirectory, word for word, when the
				// directory itself is a file (a parent's is mkdir's error).
				return errdefs.Invalid("Cannot mkdir: %s is not a directory", cfg.WorkingDir)
			}
			return err
		})
	}
	if err != nil {
		return err
	}
	st.adopt(img, cfg)
	return nil
}

// run is RUN: the command in a container of the current image, its
// build args in its environment (and, as "|n K=v …" before the command,
// in the history and the cache key), committed.
func (st *state) run(n dockerfile.Node) error {
	if len(n.Flags) > 0 {
		return errdefs.Invalid("the --%s option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn how to build images with BuildKit enabled", flagName(n.Flags[0]))
	}
	cmd, isJSON, err := dockerfile.ExecForm(n.Args)
	if err != nil {
		return errdefs.Invalid("%v", err)
	}
	if !isJSON {
		cmd = append(st.cfg.ShellOrDefault(), n.Args)
	}
	buildEnv := st.args.filterAllowed(st.cfg.Env)
	saveCmd := cmd
	if len(buildEnv) > 0 {
		var recorded []string
		for _, e := range buildEnv {
			k, _, _ := strings.Cut(e, "=")
			if st.args.referencedOrNotBuiltin(k) {
				recorded = append(recorded, e)
			}
		}
		saveCmd = slices.Concat([]string{"|" + strconv.Itoa(len(recorded))}, recorded, cmd)
	}
	createdBy := strings.Join(saveCmd, " ")
	// Keyed by the command's words, not their join: RUN ["sh","-c","echo","a"]
	// is not RUN echo a (moby compares the Cmd slices).
	words, _ := json.Marshal(saveCmd)
	key := st.key(string(words), st.cfg)
	if hit, err := st.probe(key); err != nil || hit {
		return err
	}
	r := RunSpec{Cmd: cmd, Env: append(slices.Clone(st.cfg.Env), buildEnv...), User: st.cfg.User, WorkingDir: st.cfg.WorkingDir,
		Remove: st.b.opts.Remove, ForceRemove: st.b.opts.ForceRemove}
	img, err := st.b.be.Run(st.b.ctx, Step{Parent: st.imageID, Config: st.cfg.Clone(), CreatedBy: createdBy, Author: st.author, Key: key}, r, st.b.out)
	if ee := (*ExitError)(nil); errors.As(err, &ee) {
		return &StepError{Msg: fmt.Sprintf("The command '%s' returned a non-zero code: %d", strings.Join(cmd, " "), ee.Code), Code: ee.Code}
	}
	if err != nil {
		return err
	}
	st.adopt(img, st.cfg)
	return nil
}

// StepError is a RUN that failed, as moby reports it (its message and
// code in the stream's errorDetail).
type StepError struct {
	Msg  string
	Code int
}

func (e *StepError) Error() string { return e.Msg }

// copy is COPY and ADD.
func (st *state) copy(n dockerfile.Node) error {
	upper := strings.ToUpper(n.Cmd)
	allowed := []string{"chown", "chmod", "link"}
	if n.Cmd == "copy" {
		allowed = append(allowed, "from")
	} else {
		allowed = append(allowed, "checksum", "keep-git-dir")
	}
	flags, err := dockerfile.Flags(n, allowed...)
	if err != nil {
		return errdefs.Invalid("%v", err)
	}
	for _, f := range []string{"chmod", "checksum", "keep-git-dir"} {
		if _, ok := flags[f]; ok {
			return errdefs.Invalid("the --%s option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn how to build images with BuildKit enabled", f)
		}
	}
	lookup := st.lookup()
	words, isJSON, err := dockerfile.ExecForm(n.Args)
	if err != nil {
		return errdefs.Invalid("%v", err)
	}
	if !isJSON {
		words = dockerfile.SplitRaw(n.Args, st.b.lex.Escape)
	}
	if len(words) < 2 {
		return errdefs.Invalid("%s requires at least two arguments, but only one was provided. Destination could not be determined", upper)
	}
	// Both forms' words are expanded, as buildkit's SourcesAndDest.Expand.
	for i, w := range words {
		if words[i], err = st.b.lex.ProcessWord(w, lookup); err != nil {
			return errdefs.Invalid("%v", err)
		}
	}
	chown := flags["chown"]
	if chown != "" {
		if chown, err = st.b.lex.ProcessWord(chown, lookup); err != nil {
			return errdefs.Invalid("%v", err)
		}
	}
	srcRoot, fromImage := st.b.dir, false
	if from := flags["from"]; from != "" {
		if from, err = st.b.lex.ProcessWord(from, lookup); err != nil {
			return errdefs.Invalid("%v", err)
		}
		img, err := st.b.source(from)
		if err != nil {
			return errdefs.Invalid("invalid from flag value %s: %v", from, err)
		}
		srcRoot, fromImage = img.Root, true
	}
	sources, dest := words[:len(words)-1], words[len(words)-1]
	asWritten := dest
	c := &copier{ctx: st.b.ctx, lower: st.root, srcRoot: srcRoot, fromImage: fromImage, decompress: n.Cmd == "add"}
	if err := c.collect(sources, upper); err != nil {
		return err
	}
	if len(c.infos) > 1 && !strings.HasSuffix(dest, "/") {
		return errdefs.Invalid("When using %s with more than one source file, the destination must be a directory and end with a /", upper)
	}
	if !path.IsAbs(dest) {
		trailing := strings.HasSuffix(dest, "/") || dest == "."
		dest = path.Join("/", st.cfg.WorkingDir, dest)
		if trailing && !strings.HasSuffix(dest, "/") {
			dest += "/"
		}
	}
	c.dest = dest
	if chown != "" {
		if c.uid, c.gid, err = lookupChown(st.root, chown); err != nil {
			return errdefs.Invalid("unable to convert uid/gid chown string to host mapping: %v", err)
		}
	} else if fromImage {
		c.preserve = true
	}
	chownComment := ""
	if chown != "" {
		chownComment = "--chown=" + chown + " "
	}
	msg := fmt.Sprintf("%s %s%s in %s ", upper, chownComment, c.hash(), asWritten) // moby's: the destination as written
	cfg := st.cfg.Clone()
	createdBy := strings.Join(append(cfg.ShellOrDefault(), "#(nop) "+msg), " ")
	key := st.key(createdBy, cfg)
	if hit, err := st.probe(key); err != nil || hit {
		return err
	}
	img, err := st.b.be.Copy(st.b.ctx, Step{Parent: st.imageID, Config: cfg, CreatedBy: createdBy, Author: st.author, Key: key},
		func(upperDir string) error {
			c.upper = upperDir
			return c.copyAll()
		})
	if err != nil {
		return fmt.Errorf("failed to copy files: %w", err)
	}
	st.adopt(img, cfg)
	return nil
}

// source is COPY --from's: a stage by name or index, or a local image.
func (b *builder) source(ref string) (*Image, error) {
	if img := b.stages[strings.ToLower(ref)]; img != nil {
		return img, nil
	}
	if i, err := strconv.Atoi(ref); err == nil {
		switch {
		case i == len(b.flat):
			return nil, errors.New("refers to current build stage")
		case i < 0 || i > len(b.flat):
			return nil, errors.New("index out of bounds")
		}
		return b.flat[i], nil
	}
	img, err := b.be.Image(b.ctx, ref)
	if errdefs.Is(err, errdefs.KindNotFound) {
		return nil, fmt.Errorf("pull access denied for %s: berth does not pull images; docker load or docker import it first", ref)
	}
	return img, err
}
