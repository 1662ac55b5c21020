package build

import (
	"errors"
	"strings"

	"github.com/berth-net/berth/internal/dockerfile"
	"github.com/berth-net/berth/internal/runtime/image"
)

// precheck refuses, before any step runs, what moby's legacy builder
// refuses when it parses the whole Dockerfile first (buildkit's
// instructions.Parse, in its "dockerfile parse error on line N" words):
// an unknown instruction, a flag the instruction does not take,
// arguments missing as written, and HEALTHCHECK's, SHELL's and ONBUILD's
// own rules. Without it a mistake on the last line was found after the
// RUN steps above it had run. What needs the build's variables (a port
// of EXPOSE $P, a signal) is the step's to check, as it is moby's
// dispatcher's. Every stage is checked, --target or not.
func precheck(meta []dockerfile.Node, stages []dockerfile.Stage, escape rune) error {
	for _, n := range meta {
		if err := precheckNode(n, escape); err != nil {
			return err
		}
	}
	for _, s := range stages {
		for _, n := range s.Commands {
			if err := precheckNode(n, escape); err != nil {
				return err
			}
		}
	}
	return nil
}

// instructionFlags are the flags each instruction takes as buildkit
// parses it (the legacy builder then refuses those that need BuildKit
// when their step comes); nil: none.
var instructionFlags = map[string][]string{
	"copy": {"from", "chown", "chmod", "link"},
	"add":  {"chown", "chmod", "link", "checksum", "keep-git-dir"},
	"run":  {"mount", "network", "device"}, // moby's buildkit has no --security (a build tag it leaves out)
	"cmd":  nil, "entrypoint": nil, "env": nil, "label": nil, "expose": nil, "user": nil,
	"workdir": nil, "stopsignal": nil, "volume": nil, "shell": nil, "arg": nil, "maintainer": nil,
	// Their flags are their arguments' (image.Config.Apply reads them).
	"healthcheck": nil, "onbuild": nil,
}

func precheckNode(n dockerfile.Node, escape rune) error {
	fail := func(err error) error {
		var pe *dockerfile.Error
		if errors.As(err, &pe) {
			return err
		}
		return &dockerfile.Error{Line: n.Line, Msg: err.Error()}
	}
	upper := strings.ToUpper(n.Cmd)
	allowed, known := instructionFlags[n.Cmd]
	switch {
	case n.Cmd == "from":
		return nil // Stages checked it
	case !known:
		return &dockerfile.Error{Line: n.Line, Msg: "unknown instruction: " + upper}
	case n.Cmd == "healthcheck" || n.Cmd == "onbuild" || n.Cmd == "shell":
		// Parsed without variables: a scratch config shows what fails.
		args := strings.TrimSpace(strings.Join(append(append([]string(nil), n.Flags...), n.Args), " "))
		cmdSet := false
		if _, err := new(image.Config).Apply(n.Cmd, args, dockerfile.Lex{Escape: escape}, func(string) (string, bool) { return "", false }, &cmdSet); err != nil {
			return fail(err)
		}
		return nil
	}
	if _, err := dockerfile.Flags(n, allowed...); err != nil {
		return fail(err)
	}
	args := strings.TrimSpace(n.Args)
	words := dockerfile.SplitRaw(args, escape)
	switch n.Cmd {
	case "copy", "add":
		if a, isJSON, err := dockerfile.ExecForm(args); err != nil {
			return fail(err)
		} else if isJSON {
			words = a
		}
		if len(words) < 2 {
			return fail(errors.New(upper + " requires at least two arguments, but only one was provided. Destination could not be determined"))
		}
	case "env", "label":
		switch {
		case len(words) == 0:
			return fail(errors.New(upper + " requires at least one argument"))
		case !strings.Contains(words[0], "="):
			if len(words) < 2 {
				return fail(errors.New(upper + " must have two arguments"))
			}
		default:
			for _, w := range words {
				k, _, ok := strings.Cut(w, "=")
				if !ok {
					return fail(errors.New("Syntax error - can't find = in \"" + w + "\". Must be of the form: name=value"))
				}
				if k == "" {
					return fail(errors.New(upper + " names can not be blank"))
				}
			}
		}
	case "volume":
		if a, isJSON, err := dockerfile.ExecForm(args); err != nil {
			return fail(err)
		} else if isJSON {
			words = a
		}
		if len(words) == 0 {
			return fail(errors.New(upper + " requires at least one argument"))
		}
		for _, w := range words {
			if strings.TrimSpace(w) == "" {
				return fail(errors.New("VOLUME specified can not be an empty string"))
			}
		}
	case "expose", "arg":
		if len(words) == 0 {
			return fail(errors.New(upper + " requires at least one argument"))
		}
	case "user", "workdir", "stopsignal", "maintainer":
		if args == "" {
			return fail(errors.New(upper + " requires exactly one argument"))
		}
	}
	return nil
}
