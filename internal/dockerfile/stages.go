package dockerfile

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// Stage is one FROM and the instructions after it.
type Stage struct {
	// Name is the stage's "AS name", lower case ("" if none).
	Name string
	// Base is the image or stage it starts from, as written (ARGs
	// declared before the first FROM are replaced when it is built).
	Base string
	// Platform is FROM's --platform, as written.
	Platform string
	From     Node
	Commands []Node
}

// instructions are those a Dockerfile may hold.
var instructions = map[string]bool{
	"add": true, "arg": true, "cmd": true, "copy": true, "entrypoint": true, "env": true, "expose": true,
	"from": true, "healthcheck": true, "label": true, "maintainer": true, "onbuild": true, "run": true,
	"shell": true, "stopsignal": true, "user": true, "volume": true, "workdir": true,
}

var stageNameRE = regexp.MustCompile(`^[a-z][a-z0-9-_.]*$`)

// Stages splits f into the ARGs before its first FROM (usable in FROM
// lines) and its stages, checking each instruction's name and FROM's
// form as buildkit's instructions.Parse does.
func Stages(f *File) (meta []Node, stages []Stage, err error) {
	for _, n := range f.Nodes {
		if !instructions[n.Cmd] {
			return nil, nil, &Error{n.Line, "unknown instruction: " + strings.ToUpper(n.Cmd)}
		}
		if n.Cmd == "from" {
			st, err := parseFrom(n)
			if err != nil {
				return nil, nil, err
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			if n.Cmd == "arg" {
				meta = append(meta, n)
				continue
			}
			return nil, nil, &Error{n.Line, "no build stage in current context"}
		}
		s := &stages[len(stages)-1]
		s.Commands = append(s.Commands, n)
	}
	return meta, stages, nil
}

func parseFrom(n Node) (Stage, error) {
	flags, err := Flags(n, "platform")
	if err != nil {
		return Stage{}, err
	}
	words := strings.Fields(n.Args)
	st := Stage{From: n, Platform: flags["platform"]}
	switch {
	case len(words) == 1:
	case len(words) == 3 && strings.EqualFold(words[1], "as"):
		st.Name = strings.ToLower(words[2])
		if !stageNameRE.MatchString(st.Name) {
			return Stage{}, &Error{n.Line, fmt.Sprintf("invalid name for build stage: %q, name can't start with a number or contain symbols", words[2])}
		}
	default:
		return Stage{}, &Error{n.Line, "FROM requires either one or three arguments"}
	}
	st.Base = words[0]
	return st, nil
}

// Flags reads n's --name=value flags (a flag without a value is "true"),
// refusing any not in allowed and any given twice, in buildkit's words.
func Flags(n Node, allowed ...string) (map[string]string, error) {
	out := map[string]string{}
	for _, f := range n.Flags {
		name, value, hasValue := strings.Cut(strings.TrimPrefix(f, "--"), "=")
		known := false
		for _, a := range allowed {
			known = known || a == name
		}
		if !known {
			return nil, &Error{n.Line, "unknown flag: " + name}
		}
		if _, dup := out[name]; dup {
			return nil, &Error{n.Line, "duplicate flag specified: " + name}
		}
		if !hasValue {
			value = "true"
		}
		out[name] = strings.Trim(value, `"'`)
	}
	return out, nil
}

// ExecForm reads args as a JSON array of strings (a RUN, CMD or
// ENTRYPOINT's exec form, COPY's sources and destination): ok when it is
// one; an error when it is JSON that starts with "[" but not all strings.
func ExecForm(args string) (a []string, ok bool, err error) {
	args = strings.TrimSpace(args)
	if !strings.HasPrefix(args, "[") || !json.Valid([]byte(args)) {
		return nil, false, nil
	}
	var raw []any
	if json.Unmarshal([]byte(args), &raw) != nil {
		return nil, false, nil
	}
	a = make([]string, 0, len(raw))
	for _, v := range raw {
		s, isString := v.(string)
		if !isString {
			return nil, true, fmt.Errorf("when using JSON array syntax, arrays must be comprised of strings only")
		}
		a = append(a, s)
	}
	return a, true, nil
}
