package image

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/internal/errdefs"
)

// TestParseChanges: docker import --change's Dockerfile instructions, as
// moby's BuildFromConfig applies them to an empty config.
func TestParseChanges(t *testing.T) {
	for _, tt := range []struct {
		changes []string
		want    *Config
	}{
		{nil, nil},
		{[]string{`CMD ["nginx", "-g", "daemon off;"]`}, &Config{Cmd: []string{"nginx", "-g", "daemon off;"}}},
		{[]string{"cmd echo hi && sleep 1"}, &Config{Cmd: []string{"/bin/sh", "-c", "echo hi && sleep 1"}}},
		{[]string{`ENTRYPOINT ["/init"]`}, &Config{Entrypoint: []string{"/init"}}},
		{[]string{`CMD ["a"]`, `ENTRYPOINT ["/init"]`}, &Config{Cmd: []string{"a"}, Entrypoint: []string{"/init"}}},
		{[]string{`ENV A=1 B="two words" C=x\ y`, "ENV A=3", "ENV LEGACY some value"},
			&Config{Env: []string{"B=two words", "C=x y", "A=3", "LEGACY=some value"}}},
		{[]string{`LABEL a=1 "b c"='d e'`}, &Config{Labels: map[string]string{"a": "1", "b c": "d e"}}},
		{[]string{"EXPOSE 80 53/udp 8000-8002"}, &Config{ExposedPorts: []string{"80/tcp", "53/udp", "8000/tcp", "8001/tcp", "8002/tcp"}}},
		{[]string{"USER www-data:www-data", "WORKDIR /srv", "WORKDIR app", "STOPSIGNAL SIGQUIT", `VOLUME ["/data"]`, "VOLUME /a /b"},
			&Config{User: "www-data:www-data", WorkingDir: "/srv/app", StopSignal: "SIGQUIT", Volumes: []string{"/data", "/a", "/b"}}},
		{[]string{"CMD [\"sh\"]\nENV X=1"}, &Config{Cmd: []string{"sh"}, Env: []string{"X=1"}}},
	} {
		got, err := ParseChanges(tt.changes)
		if err != nil {
			t.Errorf("ParseChanges(%q): %v", tt.changes, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseChanges(%q) (-want +got):\n%s", tt.changes, diff)
		}
	}
	for change, want := range map[string]string{
		"RUN apt-get update":   "run is not a valid change command",
		"HEALTHCHECK CMD true": "HEALTHCHECK in --change is not supported by berth",
		"ENV A":                "ENV must have two arguments",
		`ENV A="open`:          "unmatched \" quote",
		"EXPOSE 99999":         "invalid containerPort: 99999",
		"EXPOSE 80/ftp":        "invalid proto: ftp",
		"LABEL novalue":        "LABEL names must be followed by a value",
	} {
		_, err := ParseChanges([]string{change})
		if !errdefs.Is(err, errdefs.KindInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseChanges(%q) = %v, want an Invalid %q", change, err, want)
		}
	}
}
