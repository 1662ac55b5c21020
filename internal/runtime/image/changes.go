package image

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/dockerfile"
	"github.com/berth-net/berth/internal/errdefs"
)

// ParseChanges reads docker import's --change lines (Dockerfile
// instructions, as moby's BuildFromConfig applies them to an empty
// config) into an image config, nil for none: CMD and ENTRYPOINT (exec or
// shell form), ENV and LABEL (key=value words, or the one-pair "key value"
// form), EXPOSE (ports and ranges, tcp unless given), USER, WORKDIR
// (relative to the one before), STOPSIGNAL and VOLUME. Words are read as
// a Dockerfile's: quotes removed, backslash escapes, and $VAR or ${VAR}
// replaced by what the ENV lines before set. HEALTHCHECK (buildkit's
// parse) and ONBUILD (its trigger kept as written) too; any other
// instruction is refused in moby's words.
func ParseChanges(changes []string) (*Config, error) {
	return ApplyChanges(nil, changes)
}

// ApplyChanges is ParseChanges over base (docker commit --change, as
// moby's BuildFromConfig applies them to the container's config): the
// result is a copy, base is left as it is (nil, and no changes: nil).
func ApplyChanges(base *Config, changes []string) (*Config, error) {
	c := base.Clone()
	cmdSet := false
	for _, line := range strings.Split(strings.Join(changes, "\n"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		instr, args := line, ""
		if i := strings.IndexFunc(line, unicode.IsSpace); i >= 0 {
			instr, args = line[:i], strings.TrimSpace(line[i:])
		}
		instr = strings.ToLower(instr)
		if c == nil {
			c = &Config{}
		}
		if err := c.apply(instr, args, &cmdSet); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// apply applies one --change instruction to c.
func (c *Config) apply(instr, args string, cmdSet *bool) error {
	if instr == "shell" {
		return errdefs.Invalid("%s is not a valid change command", instr)
	}
	_, err := c.Apply(instr, args, dockerfile.Lex{}, nil, cmdSet)
	return err
}

// Apply applies one Dockerfile instruction that only changes the config
// (instr in lower case: cmd, entrypoint, env, label, expose, user,
// workdir, stopsignal, volume, healthcheck, onbuild, shell) to c, its
// words read by lex with variables from lookup (nil: c's environment),
// and returns moby's commit message for it ("ENV A=b", `CMD ["sh" "-c"
// "x"]`), which the legacy builder's history records. cmdSet says
// whether a CMD was given since the stage began: an ENTRYPOINT drops an
// inherited CMD unless one was.
func (c *Config) Apply(instr, args string, lex dockerfile.Lex, lookup dockerfile.Lookup, cmdSet *bool) (string, error) {
	upper := strings.ToUpper(instr)
	if lookup == nil {
		lookup = dockerfile.EnvLookup(c.Env)
	}
	one := func() (string, error) {
		w, err := lex.ProcessWord(args, lookup)
		if err != nil {
			return "", errdefs.Invalid("%s: %v", upper, err)
		}
		if w == "" {
			return "", errdefs.Invalid("%s requires exactly one argument", upper)
		}
		return w, nil
	}
	switch instr {
	case "cmd":
		cmd, err := c.commandForm(args)
		if err != nil {
			return "", err
		}
		c.Cmd, *cmdSet = cmd, true
		return fmt.Sprintf("CMD %q", c.Cmd), nil
	case "entrypoint":
		ep, err := c.commandForm(args)
		if err != nil {
			return "", err
		}
		c.Entrypoint = ep
		if !*cmdSet {
			c.Cmd = nil // as a Dockerfile's ENTRYPOINT drops an inherited CMD
		}
		return fmt.Sprintf("ENTRYPOINT %q", c.Entrypoint), nil
	case "env":
		kvs, err := pairs(upper, args, lex, lookup)
		if err != nil {
			return "", err
		}
		msg := "ENV"
		for _, kv := range kvs {
			c.Env = append(removeEnv(c.Env, kv[0]), kv[0]+"="+kv[1])
			msg += " " + kv[0] + "=" + kv[1]
		}
		return msg, nil
	case "label":
		kvs, err := pairs(upper, args, lex, lookup)
		if err != nil {
			return "", err
		}
		msg := "LABEL"
		for _, kv := range kvs {
			if c.Labels == nil {
				c.Labels = map[string]string{}
			}
			c.Labels[kv[0]] = kv[1]
			msg += " " + kv[0] + "=" + kv[1]
		}
		return msg, nil
	case "expose":
		var ports []string
		for _, raw := range dockerfile.SplitRaw(args, lex.Escape) {
			ws, err := lex.ProcessWords(raw, lookup)
			if err != nil {
				return "", errdefs.Invalid("%s: %v", upper, err)
			}
			ports = append(ports, ws...)
		}
		if len(ports) == 0 {
			return "", errdefs.Invalid("EXPOSE requires at least one argument")
		}
		return "EXPOSE " + strings.Join(ports, " "), expose(c, ports)
	case "user":
		u, err := one()
		c.User = u
		return "USER " + u, err
	case "workdir":
		dir, err := one()
		if err != nil {
			return "", err
		}
		if !path.IsAbs(dir) {
			dir = path.Join("/", c.WorkingDir, dir)
		}
		c.WorkingDir = path.Clean(dir)
		return "WORKDIR " + c.WorkingDir, nil
	case "stopsignal":
		sig, err := one()
		if err != nil {
			return "", err
		}
		if !validSignal(sig) {
			return "", errdefs.Invalid("invalid signal: %s", sig)
		}
		c.StopSignal = sig
		return "STOPSIGNAL " + sig, nil
	case "volume":
		vols, isJSON, err := stringArray(args)
		if err != nil {
			return "", err
		}
		if !isJSON {
			vols = nil
			for _, raw := range dockerfile.SplitRaw(args, lex.Escape) {
				v, err := lex.ProcessWord(raw, lookup)
				if err != nil {
					return "", errdefs.Invalid("%s: %v", upper, err)
				}
				vols = append(vols, v)
			}
		}
		if len(vols) == 0 {
			return "", errdefs.Invalid("VOLUME requires at least one argument")
		}
		for _, v := range vols {
			if strings.TrimSpace(v) == "" {
				return "", errdefs.Invalid("VOLUME specified can not be an empty string")
			}
		}
		for _, v := range vols {
			if !slices.Contains(c.Volumes, v) {
				c.Volumes = append(c.Volumes, v)
			}
		}
		return fmt.Sprintf("VOLUME %v", vols), nil
	case "healthcheck":
		h, err := parseHealthcheck(args)
		if err != nil {
			return "", err
		}
		c.Healthcheck = h
		return healthcheckComment(h), nil
	case "shell":
		sh, isJSON, err := stringArray(args)
		if err != nil {
			return "", err
		}
		if !isJSON {
			return "", errdefs.Invalid("SHELL requires the arguments to be in JSON form")
		}
		if len(sh) == 0 {
			return "", errdefs.Invalid("SHELL requires at least one argument")
		}
		c.Shell = sh
		return fmt.Sprintf("SHELL %v", sh), nil
	case "onbuild":
		trigger, rest := cutSpace(args)
		switch t := strings.ToUpper(trigger); {
		case t == "":
			return "", errdefs.Invalid("ONBUILD requires at least one argument")
		case strings.HasPrefix(t, "--"):
			return "", errdefs.Invalid("unknown flag: %s", strings.SplitN(trigger, "=", 2)[0])
		case t == "ONBUILD":
			return "", errdefs.Invalid("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
		case t == "FROM" || t == "MAINTAINER":
			return "", errdefs.Invalid("%s isn't allowed as an ONBUILD trigger", t)
		}
		if _, _, err := stringArray(strings.TrimSpace(rest)); err != nil {
			return "", err
		}
		c.OnBuild = append(c.OnBuild, args) // kept as written, as moby keeps the trigger
		return "ONBUILD " + args, nil
	}
	return "", errdefs.Invalid("%s is not a valid change command", instr)
}

// healthcheckComment is moby's "HEALTHCHECK %+v" of its HealthConfig.
func healthcheckComment(h *container.HealthConfig) string {
	type healthConfig struct {
		Test          []string
		Interval      time.Duration
		Timeout       time.Duration
		StartPeriod   time.Duration
		StartInterval time.Duration
		Retries       int
	}
	return fmt.Sprintf("HEALTHCHECK %+v", &healthConfig{h.Test, h.Interval, h.Timeout, h.StartPeriod, h.StartInterval, h.Retries})
}

// parseHealthcheck reads HEALTHCHECK's arguments as buildkit's
// parseHealthcheck (which moby's commit and import use): NONE (its flags
// not read), or [--interval=D] [--timeout=D] [--start-period=D]
// [--start-interval=D] [--retries=N] CMD in the exec form (["CMD", …])
// or the shell form (["CMD-SHELL", "…"]), with bflag's checks and words
// for the flags (quotes removed, "--" ends them, a flag once).
func parseHealthcheck(args string) (*container.HealthConfig, error) {
	rest := strings.TrimSpace(args)
	var flagWords []string
	for strings.HasPrefix(rest, "--") {
		var word string
		word, rest = cutSpace(rest)
		flagWords = append(flagWords, word)
	}
	typ, cmd := cutSpace(rest)
	typ, cmd = strings.ToUpper(typ), strings.TrimSpace(cmd)
	switch typ {
	case "":
		return nil, errdefs.Invalid("HEALTHCHECK requires at least one argument")
	case "NONE":
		if cmd != "" {
			return nil, errdefs.Invalid("HEALTHCHECK NONE takes no arguments")
		}
		return &container.HealthConfig{Test: []string{"NONE"}}, nil
	}
	names := []string{"interval", "timeout", "start-period", "start-interval", "retries"}
	flags := map[string]string{}
	for _, w := range flagWords {
		if w == "--" {
			break
		}
		flagName, value, hasValue := strings.Cut(w, "=")
		name := strings.TrimPrefix(flagName, "--")
		switch _, dup := flags[name]; {
		case !slices.Contains(names, name):
			return nil, errdefs.Invalid("unknown flag: %s", flagName)
		case dup:
			return nil, errdefs.Invalid("duplicate flag specified: %s", flagName)
		case !hasValue:
			return nil, errdefs.Invalid("missing a value on flag: %s", flagName)
		}
		v, err := dockerfile.Lex{}.ProcessWord(value, nil)
		if err != nil {
			return nil, errdefs.Invalid("%v", err)
		}
		flags[name] = v
	}
	if typ != "CMD" {
		return nil, errdefs.Invalid("Unknown type %q in HEALTHCHECK (try CMD)", typ)
	}
	h := &container.HealthConfig{}
	if a, isJSON, err := stringArray(cmd); err != nil {
		return nil, err
	} else if isJSON {
		h.Test = append([]string{"CMD"}, a...)
	} else if cmd != "" {
		h.Test = []string{"CMD-SHELL", cmd}
	}
	if len(h.Test) < 2 {
		return nil, errdefs.Invalid("Missing command after HEALTHCHECK CMD")
	}
	for _, d := range []struct {
		name string
		to   *time.Duration
	}{{"interval", &h.Interval}, {"timeout", &h.Timeout}, {"start-period", &h.StartPeriod}, {"start-interval", &h.StartInterval}} {
		v := flags[d.name]
		if v == "" {
			continue
		}
		dur, err := time.ParseDuration(v)
		if err != nil {
			return nil, errdefs.Invalid("%v", err)
		}
		if dur != 0 && dur < time.Millisecond {
			return nil, errdefs.Invalid("Interval %q cannot be less than %s", d.name, time.Millisecond)
		}
		*d.to = dur
	}
	if v := flags["retries"]; v != "" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return nil, errdefs.Invalid("%v", err)
		}
		if n < 0 {
			return nil, errdefs.Invalid("--retries cannot be negative (%d)", n)
		}
		h.Retries = int(n)
	}
	return h, nil
}

// stringArray reads args as an exec form: isJSON when it is JSON that
// starts with "[", an error when that JSON is not an array of strings
// (buildkit's errDockerfileNotStringArray).
func stringArray(args string) (a []string, isJSON bool, err error) {
	if a, isJSON, err = dockerfile.ExecForm(args); err != nil {
		return nil, true, errdefs.Invalid("%v", err)
	}
	return a, isJSON, nil
}

// cutSpace splits s at its first blank (a space or a tab, which separate
// a Dockerfile's words): the word before it and the rest.
func cutSpace(s string) (word, rest string) {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

// validSignal is moby's signal.ParseSignal's check: a signal name, with
// or without "SIG", or a number.
func validSignal(s string) bool {
	if n, err := strconv.Atoi(s); err == nil {
		return n > 0
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	return unix.SignalNum(name) != 0
}

// commandForm is a CMD or ENTRYPOINT's argument: a JSON array of strings
// (the exec form) as it is, anything else run by the config's SHELL
// (/bin/sh -c unless one was set).
func (c *Config) commandForm(args string) ([]string, error) {
	a, isJSON, err := stringArray(args)
	if err != nil || isJSON {
		return a, err
	}
	return append(c.ShellOrDefault(), args), nil
}

// ShellOrDefault is the shell a shell-form command runs in: the config's
// SHELL, or /bin/sh -c.
func (c *Config) ShellOrDefault() []string {
	if len(c.Shell) > 0 {
		return slices.Clone(c.Shell)
	}
	return []string{"/bin/sh", "-c"}
}

// pairs reads ENV's and LABEL's key=value words, each word's quotes,
// escapes and variables processed after the line is split (so a value
// with blanks in a variable stays one value, and every value sees the
// variables as they were before the instruction); "key value…" (no "="
// in the first word) is one pair, the old form buildkit still reads.
func pairs(instr, args string, lex dockerfile.Lex, lookup dockerfile.Lookup) ([][2]string, error) {
	if args == "" {
		return nil, errdefs.Invalid("%s requires at least one argument", instr)
	}
	// Which form is buildkit's parseNameVal's test: the first word,
	// quotes and all ("a b"=c is one), holds an "="; the old form then
	// splits at the first blank.
	words := dockerfile.SplitRaw(args, lex.Escape)
	if len(words) > 0 && !strings.Contains(words[0], "=") {
		first, rest := cutSpace(args)
		rest = strings.TrimSpace(rest)
		if rest == "" {
			return nil, errdefs.Invalid("%s must have two arguments", instr)
		}
		k, err := lex.ProcessWord(first, lookup)
		if err != nil {
			return nil, errdefs.Invalid("%s: %v", instr, err)
		}
		v, err := lex.ProcessWord(rest, lookup)
		if err != nil {
			return nil, errdefs.Invalid("%s: %v", instr, err)
		}
		return [][2]string{{k, v}}, nil
	}
	var out [][2]string
	for _, raw := range dockerfile.SplitRaw(args, lex.Escape) {
		if !strings.Contains(raw, "=") {
			return nil, errdefs.Invalid("Syntax error - can't find = in %q. Must be of the form: name=value", raw)
		}
		w, err := lex.ProcessWord(raw, lookup)
		if err != nil {
			return nil, errdefs.Invalid("%s: %v", instr, err)
		}
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, errdefs.Invalid("Syntax error - can't find = in %q. Must be of the form: name=value", raw)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// removeEnv drops key's entry from env.
func removeEnv(env []string, key string) []string {
	out := env[:0:0]
	for _, e := range env {
		if k, _, _ := strings.Cut(e, "="); k != key {
			out = append(out, e)
		}
	}
	return out
}

// expose adds EXPOSE's ports ("80", "53/udp", "8000-8002") as "80/tcp".
func expose(c *Config, ports []string) error {
	for _, p := range ports {
		num, proto, ok := strings.Cut(p, "/")
		if !ok {
			proto = "tcp"
		}
		proto = strings.ToLower(proto)
		if proto != "tcp" && proto != "udp" && proto != "sctp" {
			return errdefs.Invalid("invalid proto: %s", proto)
		}
		lo, hi, isRange := strings.Cut(num, "-")
		if !isRange {
			hi = lo
		}
		from, err1 := strconv.ParseUint(lo, 10, 16)
		to, err2 := strconv.ParseUint(hi, 10, 16)
		if err1 != nil || err2 != nil || from == 0 || to < from {
			return errdefs.Invalid("invalid containerPort: %s", num)
		}
		for n := from; n <= to; n++ {
			key := fmt.Sprintf("%d/%s", n, proto)
			if !slices.Contains(c.ExposedPorts, key) {
				c.ExposedPorts = append(c.ExposedPorts, key)
			}
		}
	}
	return nil
}
