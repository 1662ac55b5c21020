package cli

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"unicode"

	"github.com/spf13/pflag"

	"github.com/berth-net/berth/internal/container"
)

// Flag values with docker's parsing and messages: pflag reports a Set
// error as `invalid argument "v" for "--flag" flag: <error>`, exit 125.

// filterFlag is docker's repeatable --filter key=value.
type filterFlag struct{ args []string }

func (f *filterFlag) String() string { return "" }
func (f *filterFlag) Type() string   { return "filter" }

func (f *filterFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return errors.New("bad format of filter (expected name=value)")
	}
	f.args = append(f.args, strings.ToLower(strings.TrimSpace(k))+"="+strings.TrimSpace(v))
	return nil
}

func (f *filterFlag) value() map[string][]string {
	m := map[string][]string{}
	for _, a := range f.args {
		k, v, _ := strings.Cut(a, "=")
		m[k] = append(m[k], v)
	}
	return m
}

// mapFlag is docker's repeatable -o/--opt k=v (MapOpts).
type mapFlag struct{ m map[string]string }

func (f *mapFlag) String() string { return "" }
func (f *mapFlag) Type() string   { return "map" }

func (f *mapFlag) Set(s string) error {
	if f.m == nil {
		f.m = map[string]string{}
	}
	k, v, _ := strings.Cut(s, "=")
	f.m[k] = v
	return nil
}

// labelFlag is docker's repeatable --label k=v (ListOpts with ValidateLabel).
type labelFlag struct{ list []string }

func (f *labelFlag) String() string { return "" }
func (f *labelFlag) Type() string   { return "list" }

func (f *labelFlag) Set(s string) error {
	if _, err := validateLabel(s); err != nil {
		return err
	}
	f.list = append(f.list, s)
	return nil
}

// validateLabel is docker's ValidateLabel: KEY[=VALUE], the key neither
// empty nor holding whitespace once its leading whitespace is cut.
func validateLabel(s string) (string, error) {
	k, _, _ := strings.Cut(s, "=")
	k = strings.TrimLeftFunc(k, unicode.IsSpace)
	if k == "" {
		return "", fmt.Errorf("invalid label '%s': empty name", s)
	}
	if strings.ContainsAny(k, " \t") {
		return "", fmt.Errorf("label '%s' contains whitespaces", k)
	}
	return s, nil
}

func (f *labelFlag) toMap() map[string]string {
	m := make(map[string]string, len(f.list))
	for _, l := range f.list {
		k, v, _ := strings.Cut(l, "=")
		m[k] = v
	}
	return m
}

// listFlag is a repeatable flag whose values are checked (and possibly
// rewritten) as they are set, like docker's ListOpts.
type listFlag struct {
	list     []string
	validate func(string) (string, error)
}

func (f *listFlag) String() string { return strings.Join(f.list, " ") }
func (f *listFlag) Type() string   { return "list" }

func (f *listFlag) Set(s string) error {
	if f.validate != nil {
		v, err := f.validate(s)
		if err != nil {
			return err
		}
		s = v
	}
	f.list = append(f.list, s)
	return nil
}

// validateLink accepts "name" and "name:alias" (docker's opts.ValidateLink).
func validateLink(s string) (string, error) {
	_, _, err := container.ParseLink(s)
	return s, err
}

// validateEnv accepts K=V, and K alone (taking K's value from the CLI's
// own environment if set), as docker does.
func validateEnv(s string) (string, error) {
	k, _, hasValue := strings.Cut(s, "=")
	if k == "" {
		return "", errors.New("invalid environment variable: " + s)
	}
	if hasValue {
		return s, nil
	}
	if v, ok := os.LookupEnv(k); ok {
		return k + "=" + v, nil
	}
	return s, nil
}

func validateIP(s string) (string, error) {
	if ip := net.ParseIP(strings.TrimSpace(s)); ip != nil {
		return ip.String(), nil
	}
	return "", fmt.Errorf("IP address is not correctly formatted: %s", s)
}

// validateExtraHost accepts host:ip or host=ip; ip may be "host-gateway".
func validateExtraHost(s string) (string, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		k, v, ok = strings.Cut(s, ":")
	}
	if !ok || k == "" || strings.Contains(k, ":") {
		return "", fmt.Errorf("bad format for add-host: %q", s)
	}
	if v == "host-gateway" {
		return k + ":" + v, nil
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(v, "["), "]")
	if _, err := netip.ParseAddr(addr); err != nil {
		return "", fmt.Errorf("invalid IP address in add-host: %q", v)
	}
	return k + ":" + addr, nil
}

// stringList is a repeatable string flag shown as "list" in help, as
// docker's ListOpts are.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, " ") }
func (l *stringList) Type() string   { return "list" }

func (l *stringList) Set(s string) error {
	*l = append(*l, s)
	return nil
}

func listVarP(fs *pflag.FlagSet, p *[]string, name, short, usage string) {
	fs.VarP((*stringList)(p), name, short, usage)
}
