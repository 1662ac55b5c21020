package image

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-net/berth/internal/errdefs"
)

// ParseChanges reads docker import's --change lines (Dockerfile
// instructions, moby's BuildFromConfig) into an image config, nil for
// none: CMD and ENTRYPOINT (exec or shell form), ENV and LABEL (key=value
// pairs, quoted as in a Dockerfile; ENV's one-pair "key value" form too),
// EXPOSE (ports and ranges, tcp unless given), USER, WORKDIR (relative to
// the one before), STOPSIGNAL and VOLUME. Variables are not expanded.
// HEALTHCHECK and ONBUILD, which moby takes too, are refused by name; any
// other instruction in moby's words.
func ParseChanges(changes []string) (*Config, error) {
	var c *Config
	cmdSet := false
	for _, line := range strings.Split(strings.Join(changes, "\n"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		instr, args, _ := strings.Cut(line, " ")
		instr, args = strings.ToLower(instr), strings.TrimSpace(args)
		if c == nil {
			c = &Config{}
		}
		var err error
		switch instr {
		case "cmd":
			c.Cmd, cmdSet = commandForm(args), true
		case "entrypoint":
			c.Entrypoint = commandForm(args)
			if !cmdSet {
				c.Cmd = nil // as a Dockerfile's ENTRYPOINT drops an inherited CMD
			}
		case "env":
			err = pairs(instr, args, true, func(k, v string) {
				c.Env = append(removeEnv(c.Env, k), k+"="+v)
			})
		case "label":
			err = pairs(instr, args, false, func(k, v string) {
				if c.Labels == nil {
					c.Labels = map[string]string{}
				}
				c.Labels[k] = v
			})
		case "expose":
			err = expose(c, strings.Fields(args))
		case "user":
			c.User = args
		case "workdir":
			if !path.IsAbs(args) {
				args = path.Join("/", c.WorkingDir, args)
			}
			c.WorkingDir = path.Clean(args)
		case "stopsignal":
			c.StopSignal = args
		case "volume":
			vols := jsonArray(args)
			if vols == nil {
				vols = strings.Fields(args)
			}
			c.Volumes = append(c.Volumes, vols...)
		case "healthcheck", "onbuild":
			return nil, errdefs.Invalid("%s in --change is not supported by berth", strings.ToUpper(instr))
		default:
			return nil, errdefs.Invalid("%s is not a valid change command", instr)
		}
		if err != nil {
			return nil, err
		}
	}
	return c, nil
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

// pairs calls set for each key=value of args, the values unquoted as a
// Dockerfile's; with legacy set, "key value…" (no "=" in the first word)
// is one pair, as ENV takes it.
func pairs(instr, args string, legacy bool, set func(k, v string)) error {
	words, err := splitWords(args)
	if err != nil {
		return errdefs.Invalid("%s: %v", strings.ToUpper(instr), err)
	}
	if len(words) == 0 {
		return errdefs.Invalid("%s requires at least one argument", strings.ToUpper(instr))
	}
	if legacy && !strings.Contains(words[0], "=") {
		k, v, _ := strings.Cut(args, " ")
		if v = strings.TrimSpace(v); v == "" {
			return errdefs.Invalid("%s must have two arguments", strings.ToUpper(instr))
		}
		set(k, v)
		return nil
	}
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return errdefs.Invalid("%s names must be followed by a value: %q", strings.ToUpper(instr), w)
		}
		set(k, v)
	}
	return nil
}

// splitWords splits s on blanks outside quotes, removing the quotes and
// the backslashes that escape (outside single quotes), as a Dockerfile's
// key=value words are read.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	in, quote := false, byte(0)
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case quote == 0 && (ch == ' ' || ch == '\t'):
			if in {
				words, in = append(words, cur.String()), false
				cur.Reset()
			}
			continue
		case ch == '\\' && quote != '\'' && i+1 < len(s):
			i++
			ch = s[i]
		case quote == 0 && (ch == '"' || ch == '\''):
			quote, in = ch, true
			continue
		case ch == quote:
			quote = 0
			continue
		}
		cur.WriteByte(ch)
		in = true
	}
	if quote != 0 {
		return nil, fmt.Errorf("unmatched %c quote", quote)
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
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
