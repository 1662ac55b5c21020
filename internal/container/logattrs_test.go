package container

import (
	"maps"
	"os"
	"testing"
	"time"
)

// TestLogAttrs: json-file's attributes as moby's ExtraAttributes and
// ParseLogTag compute them, for the labels and variables named or
// matched, and for tags written for Docker.
func TestLogAttrs(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	info := &LogInfo{
		ContainerID:         "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		ContainerName:       "/web",
		ContainerEntrypoint: "sh",
		ContainerArgs:       []string{"-c", "echo hi"},
		ContainerImageID:    "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210",
		ContainerImageName:  "busybox:latest",
		ContainerEnv:        []string{"PATH=/bin", "GOOS=linux", "GOARCH=amd64", "EMPTY=", "NOVALUE"},
		ContainerLabels:     map[string]string{"com.example.team": "net", "com.example.tier": "front", "stage": "prod"},
		ContainerCreated:    time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC),
		DaemonName:          "docker",
	}
	for _, tc := range []struct {
		name string
		lc   LogConfig
		want map[string]string
	}{
		{"none asked", LogConfig{}, nil},
		{"labels named", LogConfig{Config: map[string]string{"labels": "stage,missing"}}, map[string]string{"stage": "prod"}},
		{"labels matched", LogConfig{Config: map[string]string{"labels-regex": `^com\.example\.`}},
			map[string]string{"com.example.team": "net", "com.example.tier": "front"}},
		{"env named", LogConfig{Config: map[string]string{"env": "PATH,EMPTY,NOVALUE"}}, map[string]string{"PATH": "/bin", "EMPTY": ""}},
		{"env matched", LogConfig{Config: map[string]string{"env-regex": "^GO"}}, map[string]string{"GOOS": "linux", "GOARCH": "amd64"}},
		{"all at once", LogConfig{Type: "json-file", Config: map[string]string{"labels": "stage", "env": "GOOS", "tag": "{{.Name}}"}},
			map[string]string{"stage": "prod", "GOOS": "linux", "tag": "web"}},
		{"short ID", LogConfig{Config: map[string]string{"tag": "{{.ID}}"}}, map[string]string{"tag": "0123456789ab"}},
		{"full ID", LogConfig{Config: map[string]string{"tag": "{{.FullID}}"}}, map[string]string{"tag": info.ContainerID}},
		{"image", LogConfig{Config: map[string]string{"tag": "{{.ImageName}}/{{.ImageID}}"}}, map[string]string{"tag": "busybox:latest/fedcba987654"}},
		{"image's full ID", LogConfig{Config: map[string]string{"tag": "{{.ImageFullID}}"}}, map[string]string{"tag": info.ContainerImageID}},
		{"command", LogConfig{Config: map[string]string{"tag": "{{.Command}}"}}, map[string]string{"tag": "sh -c echo hi"}},
		{"host", LogConfig{Config: map[string]string{"tag": "{{.Hostname}}"}}, map[string]string{"tag": host}},
		{"daemon and fields", LogConfig{Config: map[string]string{"tag": "{{.DaemonName}}|{{.ContainerName}}|{{index .ContainerLabels \"stage\"}}"}},
			map[string]string{"tag": "docker|/web|prod"}},
		{"functions", LogConfig{Config: map[string]string{"tag": `{{upper .Name}}-{{truncate .ID 4}}-{{title "a b"}}-{{pad "x" 1 0}}-{{join (split "a.b" ".") "_"}}-{{json .ContainerArgs}}`}},
			map[string]string{"tag": `WEB-0123-A B- x-a_b-["-c","echo hi"]`}},
		{"a literal", LogConfig{Config: map[string]string{"tag": "frontend"}}, map[string]string{"tag": "frontend"}},
		{"created", LogConfig{Config: map[string]string{"tag": `{{.ContainerCreated.Format "2006"}}`}}, map[string]string{"tag": "2026"}},
		{"an empty tag is none", LogConfig{Config: map[string]string{"tag": `{{if false}}x{{end}}`}}, nil},
		{"local carries none", LogConfig{Type: "local", Config: map[string]string{"tag": "x"}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.lc.LogAttrs(info)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tc.want) || (got == nil) != (tc.want == nil) {
				t.Errorf("LogAttrs = %v, want %v", got, tc.want)
			}
		})
	}
	if _, err := (LogConfig{Config: map[string]string{"tag": "{{.Nope}}"}}).LogAttrs(info); err == nil {
		t.Error("a tag naming no field of LogInfo was taken")
	}
}
