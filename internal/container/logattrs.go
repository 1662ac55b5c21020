package container

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"text/template"
	"time"
)

// json-file's attributes: the options that add each entry of a
// container's log the values of some of its labels and environment
// variables, and a tag (moby's logger.Info.ExtraAttributes and
// loggerutils.ParseLogTag), which docker logs --details shows in front of
// each line ("env1=x,tag=web ").
const (
	logAttrLabels      = "labels"       // label keys, comma-separated
	logAttrLabelsRegex = "labels-regex" // a regular expression of label keys
	logAttrEnv         = "env"          // variable names, comma-separated
	logAttrEnvRegex    = "env-regex"    // a regular expression of variable names
	logAttrTag         = "tag"          // a Go template of LogInfo
)

// LogInfo is what a log tag's template sees of a container: moby's
// logger.Info, fields and methods, so that a template written for Docker
// ("{{.Name}}/{{.ID}}", "{{.ImageName}}|{{.ContainerLabels}}") gives the
// same tag.
type LogInfo struct {
	Config              map[string]string // the log options
	ContainerID         string
	ContainerName       string // with moby's leading "/"
	ContainerEntrypoint string // the command's path
	ContainerArgs       []string
	ContainerImageID    string
	ContainerImageName  string
	ContainerCreated    time.Time
	ContainerEnv        []string
	ContainerLabels     map[string]string
	LogPath             string
	DaemonName          string
}

// ID is the container's short ID.
func (i *LogInfo) ID() string { return TruncateID(i.ContainerID) }

// FullID is the container's ID.
func (i *LogInfo) FullID() string { return i.ContainerID }

// Name is the container's name without its "/".
func (i *LogInfo) Name() string { return strings.TrimPrefix(i.ContainerName, "/") }

// Command is the path and the arguments, joined by spaces.
func (i *LogInfo) Command() string {
	return strings.Join(append([]string{i.ContainerEntrypoint}, i.ContainerArgs...), " ")
}

// ImageID is the image's short ID.
func (i *LogInfo) ImageID() string { return TruncateID(i.ContainerImageID) }

// ImageFullID is the image's ID.
func (i *LogInfo) ImageFullID() string { return i.ContainerImageID }

// ImageName is the image as the container's create named it.
func (i *LogInfo) ImageName() string { return i.ContainerImageName }

// Hostname is the host's name.
func (i *LogInfo) Hostname() (string, error) { return os.Hostname() }

// TruncateID is moby's stringid.TruncateID, the short form docker
// prints: without an algorithm's prefix, 12 characters.
func TruncateID(id string) string {
	if _, after, ok := strings.Cut(id, ":"); ok {
		id = after
	}
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

// logTagFuncs are the functions of a tag's template (moby's
// logger/templates basicFunctions).
var logTagFuncs = template.FuncMap{
	"json": func(v any) string {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(v)
		return strings.TrimSpace(b.String())
	},
	"split": strings.Split,
	"join":  strings.Join,
	"title": strings.Title, //nolint:staticcheck // moby's, word for word
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"pad": func(s string, prefix, suffix int) string {
		if s == "" {
			return s
		}
		return strings.Repeat(" ", prefix) + s + strings.Repeat(" ", suffix)
	},
	"truncate": func(s string, n int) string {
		if len(s) < n {
			return s
		}
		return s[:n]
	},
}

// parseLogTag parses a tag's template.
func parseLogTag(s string) (*template.Template, error) {
	return template.New("log-tag").Funcs(logTagFuncs).Parse(s)
}

// LogAttrs are the attributes json-file writes into each entry of the
// container's log, as moby's jsonfilelog.New computes them: the labels
// and variables its options name or match, and the tag when one is asked
// for (moby sets none by default for json-file). None for other drivers,
// which carry none in Docker either.
func (lc LogConfig) LogAttrs(info *LogInfo) (map[string]string, error) {
	if lc.Driver() != LogDriver {
		return nil, nil
	}
	opts := lc.Config
	out := map[string]string{}
	if keys := opts[logAttrLabels]; keys != "" {
		for k := range strings.SplitSeq(keys, ",") {
			if v, ok := info.ContainerLabels[k]; ok {
				out[k] = v
			}
		}
	}
	if expr := opts[logAttrLabelsRegex]; expr != "" {
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, err
		}
		for k, v := range info.ContainerLabels {
			if re.MatchString(k) {
				out[k] = v
			}
		}
	}
	env := map[string]string{}
	for _, e := range info.ContainerEnv {
		if k, v, ok := strings.Cut(e, "="); ok {
			env[k] = v
		}
	}
	if names := opts[logAttrEnv]; names != "" {
		for k := range strings.SplitSeq(names, ",") {
			if v, ok := env[k]; ok {
				out[k] = v
			}
		}
	}
	if expr := opts[logAttrEnvRegex]; expr != "" {
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, err
		}
		for k, v := range env {
			if re.MatchString(k) {
				out[k] = v
			}
		}
	}
	if t := opts[logAttrTag]; t != "" {
		tmpl, err := parseLogTag(t)
		if err != nil {
			return nil, err
		}
		var b strings.Builder
		if err := tmpl.Execute(&b, info); err != nil {
			return nil, err
		}
		if b.Len() > 0 {
			out[logAttrTag] = b.String()
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}
