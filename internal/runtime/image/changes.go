package image

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/container"
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

// apply applies one instruction to c.
func (c *Config) apply(instr, args string, cmdSet *bool) error {
	upper := strings.ToUpper(instr)
	lookup := func(name string) string { return envValue(c.Env, name) }
	one := func() (string, error) {
		w, err := processWord(args, lookup)
		if err != nil {
			return "", errdefs.Invalid("%s: %v", upper, err)
		}
		if w == "" {
			return "", errdefs.Invalid("%s requires exactly one argument", upper)
		}
		return w, nil
	}
	var err error
	switch instr {
	case "cmd":
		c.Cmd, *cmdSet = commandForm(args), true
	case "entrypoint":
		c.Entrypoint = commandForm(args)
		if !*cmdSet {
			c.Cmd = nil // as a Dockerfile's ENTRYPOINT drops an inherited CMD
		}
	case "env":
		err = pairs(upper, args, lookup, func(k, v string) { c.Env = append(removeEnv(c.Env, k), k+"="+v) })
	case "label":
		err = pairs(upper, args, lookup, func(k, v string) {
			if c.Labels == nil {
				c.Labels = map[string]string{}
			}
			c.Labels[k] = v
		})
	case "expose":
		var ports []string
		if ports, err = splitWords(args, lookup); err == nil {
			err = expose(c, ports)
		}
	case "user":
		c.User, err = one()
	case "workdir":
		var dir string
		if dir, err = one(); err == nil {
			if !path.IsAbs(dir) {
				dir = path.Join("/", c.WorkingDir, dir)
			}
			c.WorkingDir = path.Clean(dir)
		}
	case "stopsignal":
		var sig string
		if sig, err = one(); err == nil {
			if !validSignal(sig) {
				return errdefs.Invalid("invalid signal: %s", sig)
			}
			c.StopSignal = sig
		}
	case "volume":
		vols := jsonArray(args)
		if vols == nil {
			if vols, err = splitWords(args, lookup); err != nil {
				break
			}
		}
		if len(vols) == 0 {
			return errdefs.Invalid("VOLUME requires at least one argument")
		}
		for _, v := range vols {
			if strings.TrimSpace(v) == "" {
				return errdefs.Invalid("VOLUME specified can not be an empty string")
			}
		}
		c.Volumes = append(c.Volumes, vols...)
	case "healthcheck":
		var h *container.HealthConfig
		if h, err = parseHealthcheck(args); err == nil {
			c.Healthcheck = h
		}
	case "onbuild":
		trigger, rest := cutSpace(args)
		switch t := strings.ToUpper(trigger); {
		case t == "":
			return errdefs.Invalid("ONBUILD requires at least one argument")
		case strings.HasPrefix(t, "--"):
			return errdefs.Invalid("unknown flag: %s", strings.SplitN(trigger, "=", 2)[0])
		case t == "ONBUILD":
			return errdefs.Invalid("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
		case t == "FROM" || t == "MAINTAINER":
			return errdefs.Invalid("%s isn't allowed as an ONBUILD trigger", t)
		}
		if _, _, err := stringArray(strings.TrimSpace(rest)); err != nil {
			return err
		}
		c.OnBuild = append(c.OnBuild, args) // kept as written, as moby keeps the trigger
	default:
		return errdefs.Invalid("%s is not a valid change command", instr)
	}
	return err
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
		v, err := processWord(value, func(string) string { return "" })
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
	if !strings.HasPrefix(args, "[") || !json.Valid([]byte(args)) {
		return nil, false, nil
	}
	if a = jsonArray(args); a == nil {
		return nil, true, errdefs.Invalid("when using JSON array syntax, arrays must be comprised of strings only")
	}
	return a, true, nil
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
// (the exec form) as it is, anything else run by /bin/sh -c.
func commandForm(args string) []string {
	if a := jsonArray(args); a != nil {
		return a
	}
	return []string{"/bin/sh", "-c", args}
}

// jsonArray is args as a JSON array of strings, or nil.
func jsonArray(args string) []string {
	if !strings.HasPrefix(args, "[") {
		return nil
	}
	var a []string
	if json.Unmarshal([]byte(args), &a) != nil {
		return nil
	}
	if a == nil {
		a = []string{}
	}
	return a
}

// pairs calls set for each key=value word of args; "key value…" (no "="
// in the first word) is one pair, the old form buildkit still reads.
func pairs(instr, args string, lookup func(string) string, set func(k, v string)) error {
	first := args
	if i := strings.IndexFunc(args, unicode.IsSpace); i >= 0 {
		first = args[:i]
	}
	if args == "" {
		return errdefs.Invalid("%s requires at least one argument", instr)
	}
	if !strings.Contains(first, "=") {
		rest := strings.TrimSpace(args[len(first):])
		if rest == "" {
			return errdefs.Invalid("%s must have two arguments", instr)
		}
		k, err := processWord(first, lookup)
		if err != nil {
			return errdefs.Invalid("%s: %v", instr, err)
		}
		v, err := processWord(rest, lookup)
		if err != nil {
			return errdefs.Invalid("%s: %v", instr, err)
		}
		set(k, v)
		return nil
	}
	words, err := splitWords(args, lookup)
	if err != nil {
		return errdefs.Invalid("%s: %v", instr, err)
	}
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return errdefs.Invalid("Syntax error - can't find = in %q. Must be of the form: name=value", w)
		}
		set(k, v)
	}
	return nil
}

// splitWords splits s into words as a Dockerfile's shell-like words:
// blanks outside quotes separate them, quotes are removed, a backslash
// escapes the next character (in double quotes only ", $ and \), and
// $NAME or ${NAME} outside single quotes is replaced by lookup's value.
func splitWords(s string, lookup func(string) string) ([]string, error) {
	return words(s, lookup, true)
}

// processWord is s as one word (blanks kept): quotes, escapes and
// variables as splitWords reads them.
func processWord(s string, lookup func(string) string) (string, error) {
	w, err := words(s, lookup, false)
	if err != nil || len(w) == 0 {
		return "", err
	}
	return w[0], nil
}

func words(s string, lookup func(string) string, split bool) ([]string, error) {
	var out []string
	var cur strings.Builder
	in, quote := false, byte(0)
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case split && quote == 0 && (ch == ' ' || ch == '\t'):
			if in {
				out, in = append(out, cur.String()), false
				cur.Reset()
			}
			continue
		case ch == '\\' && i+1 < len(s) && (quote == 0 || quote == '"' && strings.IndexByte(`"$\`, s[i+1]) >= 0):
			i++
			cur.WriteByte(s[i])
		case quote == 0 && (ch == '"' || ch == '\''):
			quote = ch
		case ch == quote:
			quote = 0
		case ch == '$' && quote != '\'':
			name, n := varName(s[i+1:])
			if n == 0 {
				cur.WriteByte(ch)
				break
			}
			cur.WriteString(lookup(name))
			i += n
		default:
			cur.WriteByte(ch)
		}
		in = true
	}
	if quote != 0 {
		return nil, fmt.Errorf("unmatched %c quote", quote)
	}
	if in || !split {
		out = append(out, cur.String())
	}
	return out, nil
}

// varName reads the name of a variable after a "$": NAME or {NAME}; n is
// how many bytes it took, 0 for none.
func varName(s string) (name string, n int) {
	if strings.HasPrefix(s, "{") {
		end := strings.IndexByte(s, '}')
		if end < 2 {
			return "", 0
		}
		return s[1:end], end + 1
	}
	for n < len(s) && (s[n] == '_' || unicode.IsLetter(rune(s[n])) || n > 0 && unicode.IsDigit(rune(s[n]))) {
		n++
	}
	return s[:n], n
}

// envValue is key's value in env ("KEY=value" entries), "" if unset.
func envValue(env []string, key string) string {
	for _, e := range env {
		if k, v, _ := strings.Cut(e, "="); k == key {
			return v
		}
	}
	return ""
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
