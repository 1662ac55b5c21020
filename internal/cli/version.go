package cli

import (
	"fmt"
	"io"
	"runtime"
	"sort"
	"strconv"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/berth-net/berth/internal/client"
	"github.com/berth-net/berth/internal/version"
)

// versionTemplate prints what docker version prints, section for section,
// so that scripts grepping "API version:" keep working.
const versionTemplate = `{{with .Client -}}
Client:{{if .Platform}}{{if .Platform.Name}} {{.Platform.Name}}{{end}}{{end}}
 Version:	{{.Version}}
 API version:	{{.APIVersion}}{{if ne .APIVersion .DefaultAPIVersion}} (downgraded from {{.DefaultAPIVersion}}){{end}}
 Go version:	{{.GoVersion}}
 Git commit:	{{.GitCommit}}
 Built:	{{.BuildTime}}
 OS/Arch:	{{.Os}}/{{.Arch}}
 Context:	{{.Context}}
{{- end}}
{{- with .Server}}

Server:{{if .Platform.Name}} {{.Platform.Name}}{{end}}
{{- range $c := .Components}}
 {{$c.Name}}:
{{- if eq $c.Name "Engine"}}
  Version:	{{$c.Version}}
  API version:	{{index $c.Details "ApiVersion"}} (minimum version {{index $c.Details "MinAPIVersion"}})
  Go version:	{{index $c.Details "GoVersion"}}
  Git commit:	{{index $c.Details "GitCommit"}}
  Built:	{{index $c.Details "BuildTime"}}
  OS/Arch:	{{index $c.Details "Os"}}/{{index $c.Details "Arch"}}
  Experimental:	{{index $c.Details "Experimental"}}
{{- else}}
  Version:	{{$c.Version}}
{{- range $k := detailKeys $c}}
  {{$k}}:	{{index $c.Details $k}}
{{- end}}
{{- end}}
{{- end}}
{{- end}}`

type platformInfo struct {
	Name string `json:"Name,omitempty"`
}

// clientVersion has the JSON shape of docker's client section.
type clientVersion struct {
	Platform          *platformInfo `json:"Platform,omitempty"`
	Version           string        `json:"Version,omitempty"`
	APIVersion        string        `json:"ApiVersion,omitempty"`
	DefaultAPIVersion string        `json:"DefaultAPIVersion,omitempty"`
	GitCommit         string        `json:"GitCommit,omitempty"`
	GoVersion         string        `json:"GoVersion,omitempty"`
	Os                string        `json:"Os,omitempty"`
	Arch              string        `json:"Arch,omitempty"`
	BuildTime         string        `json:"BuildTime,omitempty"`
	Context           string        `json:"Context"`
}

// newClientVersion is the client's section, before the daemon is asked.
func newClientVersion() clientVersion {
	return clientVersion{
		Platform:          &platformInfo{Name: "berth"},
		Version:           version.Version,
		APIVersion:        client.MaxAPIVersion,
		DefaultAPIVersion: client.MaxAPIVersion,
		GitCommit:         version.Commit(),
		BuildTime:         reformatDate(version.Built()),
		GoVersion:         runtime.Version(),
		Os:                runtime.GOOS,
		Arch:              runtime.GOARCH,
		Context:           "default",
	}
}

// infoView is docker info's template data (docker's dockerInfo): the
// daemon's Info, with the client's section and the errors beside it, so
// that {{.ClientInfo.Context}} and {{json .ServerErrors}} work.
type infoView struct {
	*system.Info
	ServerErrors []string    `json:",omitempty"`
	ClientInfo   *infoClient `json:",omitempty"`
	ClientErrors []string    `json:",omitempty"`
}

type infoClient struct {
	Debug bool
	clientVersion
	Plugins  []struct{}
	Warnings []string
}

type versionInfo struct {
	Client clientVersion
	Server *types.Version
}

func newVersionCommand(e *env) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version [OPTIONS]",
		Short: "Show the berth version information",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runVersion(cmd, e, format)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template")
	return cmd
}

func runVersion(cmd *cobra.Command, e *env, format string) error {
	switch format {
	case "":
		format = versionTemplate
	case jsonKey:
		format = jsonFormat
	}
	tmpl, err := template.New("version").Funcs(templateFuncs).
		Funcs(template.FuncMap{"detailKeys": detailKeys}).Parse(format)
	if err != nil {
		return StatusError{StatusCode: 64, Status: "template parsing error: " + err.Error()}
	}
	vi := versionInfo{Client: newClientVersion()}
	// As docker does, the client section is printed even when the daemon
	// cannot be reached; that error is returned afterwards.
	var serverErr error
	if c, err := e.client(); err != nil {
		serverErr = err
	} else if sv, err := c.ServerVersion(cmd.Context()); err != nil {
		serverErr = err
	} else {
		vi.Client.APIVersion, _ = c.APIVersion(cmd.Context())
		vi.Server = withEngineComponent(sv)
	}
	tw := tabwriter.NewWriter(e.out, 20, 1, 1, ' ', 0)
	err = tmpl.Execute(tw, vi)
	_, _ = tw.Write([]byte("\n"))
	_ = tw.Flush()
	if serverErr != nil {
		return serverErr
	}
	return err
}

// withEngineComponent makes sure the server has an "Engine" component,
// building it from the top-level fields when the daemon sent none.
func withEngineComponent(sv types.Version) *types.Version {
	for _, c := range sv.Components {
		if c.Name == "Engine" {
			if bt, ok := c.Details["BuildTime"]; ok {
				c.Details["BuildTime"] = reformatDate(bt)
			}
			return &sv
		}
	}
	sv.Components = append(sv.Components, types.ComponentVersion{
		Name:    "Engine",
		Version: sv.Version,
		Details: map[string]string{
			"ApiVersion":    sv.APIVersion,
			"MinAPIVersion": sv.MinAPIVersion,
			"GitCommit":     sv.GitCommit,
			"GoVersion":     sv.GoVersion,
			"Os":            sv.Os,
			"Arch":          sv.Arch,
			"BuildTime":     reformatDate(sv.BuildTime),
			"Experimental":  strconv.FormatBool(sv.Experimental),
		},
	})
	return &sv
}

func reformatDate(s string) string {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.Format(time.ANSIC)
	}
	return s
}

func detailKeys(c types.ComponentVersion) []string {
	keys := make([]string, 0, len(c.Details))
	for k := range c.Details {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func newInfoCommand(e *env) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "info [OPTIONS]",
		Short: "Display system-wide information",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			info, err := c.Info(cmd.Context())
			if err != nil {
				return err
			}
			if format != "" {
				cv := newClientVersion()
				if v, err := c.APIVersion(cmd.Context()); err == nil {
					cv.APIVersion = v
				}
				return inspectOne(e, format, infoView{Info: &info, ClientInfo: &infoClient{Debug: e.debug, clientVersion: cv, Plugins: []struct{}{}}})
			}
			printInfo(e, info)
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template")
	return cmd
}

// inspectOne renders a single value with a template ("json" for JSON).
func inspectOne(e *env, format string, v any) error {
	if format == jsonKey {
		format = jsonFormat
	}
	tmpl, err := parseTemplate(format)
	if err != nil {
		return StatusError{StatusCode: 64, Status: err.Error()}
	}
	if err := tmpl.Execute(e.out, v); err != nil {
		return fmt.Errorf("template parsing error: %w", err)
	}
	_, err = fmt.Fprintln(e.out)
	return err
}

// printInfo prints the parts of docker info that berth fills, under
// docker's labels so that scripts reading them keep working.
func printInfo(e *env, info system.Info) {
	w := e.out
	fmt.Fprintln(w, "Client:")
	fmt.Fprintln(w, " Version:   ", version.Version)
	fmt.Fprintln(w, " Context:   ", "default")
	fmt.Fprintln(w, " Debug Mode:", e.debug)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Server:")
	fmt.Fprintln(w, " Containers:", info.Containers)
	fmt.Fprintln(w, "  Running:", info.ContainersRunning)
	fmt.Fprintln(w, "  Paused:", info.ContainersPaused)
	fmt.Fprintln(w, "  Stopped:", info.ContainersStopped)
	fmt.Fprintln(w, " Images:", info.Images)
	printNonEmpty(w, " Server Version:", info.ServerVersion)
	printNonEmpty(w, " Storage Driver:", info.Driver)
	fmt.Fprintln(w, " Swarm:", info.Swarm.LocalNodeState)
	if info.DefaultRuntime != "" {
		fmt.Fprintln(w, " Default Runtime:", info.DefaultRuntime)
	}
	printNonEmpty(w, " runc version:", info.RuncCommit.ID)
	printNonEmpty(w, " Kernel Version:", info.KernelVersion)
	printNonEmpty(w, " Operating System:", info.OperatingSystem)
	printNonEmpty(w, " OSType:", info.OSType)
	printNonEmpty(w, " Architecture:", info.Architecture)
	fmt.Fprintln(w, " CPUs:", info.NCPU)
	fmt.Fprintln(w, " Total Memory:", units.BytesSize(float64(info.MemTotal)))
	printNonEmpty(w, " Name:", info.Name)
	printNonEmpty(w, " ID:", info.ID)
	fmt.Fprintln(w, " Docker Root Dir:", info.DockerRootDir)
	fmt.Fprintln(w, " Debug Mode:", info.Debug)
	fmt.Fprintln(w, " Experimental:", info.ExperimentalBuild)
	fmt.Fprintln(w, " Live Restore Enabled:", info.LiveRestoreEnabled)
	fmt.Fprintln(w)
}

func printNonEmpty(w io.Writer, label, value string) {
	if value != "" {
		fmt.Fprintln(w, label, value)
	}
}
