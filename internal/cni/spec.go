package cni

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// SupportedVersions are the CNI specification versions berth-cni speaks,
// oldest first, as the reference plugins do: 0.1.0 (a configuration
// without cniVersion) and 0.2.0 results have one address per family and
// no interfaces (encode).
var SupportedVersions = []string{"0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}

// LatestVersion is the version of a result when the caller asked for none
// (VERSION's answer names it too).
const LatestVersion = "1.1.0"

// The error codes of the CNI specification (SPEC.md, "Error"), and berth's
// own above 100, where the specification leaves codes to plugins.
const (
	CodeIncompatibleVersion = 1
	CodeUnsupportedField    = 2
	CodeUnknownContainer    = 3
	CodeInvalidEnv          = 4
	CodeIOFailure           = 5
	CodeDecodeFailure       = 6
	CodeInvalidConfig       = 7
	CodeTryAgainLater       = 11
	CodeNotAvailable        = 50 // STATUS: the plugin cannot take ADDs now
	CodeAddressesExhausted  = 100
	CodePortTaken           = 101
	CodeInternal            = 999
)

// Error is a CNI error result: printed on stdout as JSON, with exit status 1.
type Error struct {
	CNIVersion string `json:"cniVersion"`
	Code       uint   `json:"code"`
	Msg        string `json:"msg"`
	Details    string `json:"details,omitempty"`
}

func (e *Error) Error() string {
	if e.Details == "" {
		return e.Msg
	}
	return e.Msg + ": " + e.Details
}

// errorf makes an Error with a code and a message.
func errorf(code uint, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Command is CNI_COMMAND.
type Command string

const (
	CmdAdd     Command = "ADD"
	CmdDel     Command = "DEL"
	CmdCheck   Command = "CHECK"
	CmdVersion Command = "VERSION"
	CmdGC      Command = "GC"
	CmdStatus  Command = "STATUS"
)

// Env is what a runtime passes in the environment (SPEC.md, "Parameters").
type Env struct {
	Command     Command
	ContainerID string
	Netns       string
	IfName      string
	Args        map[string]string // CNI_ARGS, "K1=V1;K2=V2"
	Path        string
}

// ParseEnv reads the CNI_* variables from getenv and checks that the
// command has the ones it needs.
func ParseEnv(getenv func(string) string) (Env, error) {
	e := Env{
		Command:     Command(getenv("CNI_COMMAND")),
		ContainerID: getenv("CNI_CONTAINERID"),
		Netns:       getenv("CNI_NETNS"),
		IfName:      getenv("CNI_IFNAME"),
		Path:        getenv("CNI_PATH"),
	}
	args, err := parseArgs(getenv("CNI_ARGS"))
	if err != nil {
		return e, err
	}
	e.Args = args
	var need []string
	switch e.Command {
	case CmdAdd:
		need = []string{"CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"}
	case CmdCheck:
		need = []string{"CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"}
	case CmdDel:
		need = []string{"CNI_CONTAINERID", "CNI_IFNAME"} // DEL may come without a namespace
	case CmdVersion, CmdGC, CmdStatus:
	case "":
		return e, errorf(CodeInvalidEnv, "CNI_COMMAND is not set")
	default:
		return e, errorf(CodeInvalidEnv, "unknown CNI_COMMAND %q", e.Command)
	}
	for _, k := range need {
		if getenv(k) == "" {
			return e, errorf(CodeInvalidEnv, "required environment variable %s is missing", k)
		}
	}
	if e.IfName != "" {
		if err := validIfName(e.IfName); err != nil {
			return e, err
		}
	}
	if e.ContainerID != "" && !validID(e.ContainerID, true) {
		return e, errorf(CodeInvalidEnv, "container ID %q must start with a letter or digit and hold only letters, digits, '_', '.' and '-'", e.ContainerID)
	}
	return e, nil
}

// validID is the specification's rule for container IDs (first: the
// first character may not be '_', '.' or '-') and network names.
func validID(s string, first bool) bool {
	for i, r := range s {
		alnum := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 && first || r != '_' && r != '.' && r != '-') {
			return false
		}
	}
	return s != ""
}

// validIfName is the specification's rule for CNI_IFNAME (and the kernel's).
func validIfName(name string) error {
	switch {
	case len(name) > 15:
		return errorf(CodeInvalidEnv, "interface name %q is longer than 15 characters", name)
	case name == "." || name == "..":
		return errorf(CodeInvalidEnv, "interface name %q is reserved", name)
	case strings.ContainsAny(name, "/: \t\n"):
		return errorf(CodeInvalidEnv, "interface name %q contains '/', ':' or whitespace", name)
	}
	return nil
}

// parseArgs splits CNI_ARGS ("IgnoreUnknown=1;K8S_POD_NAME=x").
func parseArgs(s string) (map[string]string, error) {
	out := map[string]string{}
	if s == "" {
		return out, nil
	}
	for _, kv := range strings.Split(s, ";") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, errorf(CodeInvalidEnv, "CNI_ARGS: %q is not KEY=VALUE", kv)
		}
		out[k] = v
	}
	return out, nil
}

// checkVersion refuses a configuration version berth-cni does not speak.
func checkVersion(v string) error {
	if v == "" {
		v = "0.1.0" // the specification's default for a configuration without one
	}
	if !slices.Contains(SupportedVersions, v) {
		return &Error{Code: CodeIncompatibleVersion, Msg: "incompatible CNI versions",
			Details: fmt.Sprintf("config is %q, plugin supports %q", v, SupportedVersions)}
	}
	return nil
}

// versionAnswer is VERSION's result.
func versionAnswer() []byte {
	b, _ := json.Marshal(struct {
		CNIVersion        string   `json:"cniVersion"`
		SupportedVersions []string `json:"supportedVersions"`
	}{LatestVersion, SupportedVersions})
	return b
}

// atLeast reports whether version v is at least want (both "x.y.z").
func atLeast(v, want string) bool {
	return compareVersions(v, want) >= 0
}

func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(pa), len(pb)) {
		var x, y int
		if i < len(pa) {
			fmt.Sscanf(pa[i], "%d", &x)
		}
		if i < len(pb) {
			fmt.Sscanf(pb[i], "%d", &y)
		}
		if x != y {
			return x - y
		}
	}
	return 0
}
