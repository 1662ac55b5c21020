package image

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/internal/container"
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
		// The first word decides the form, its quotes and all.
		{[]string{`LABEL "a b"=c "multi word"="v 1"`}, &Config{Labels: map[string]string{"a b": "c", "multi word": "v 1"}}},
		{[]string{"EXPOSE 80 53/udp 8000-8002"}, &Config{ExposedPorts: []string{"80/tcp", "53/udp", "8000/tcp", "8001/tcp", "8002/tcp"}}},
		{[]string{"USER www-data:www-data", "WORKDIR /srv", "WORKDIR app", "STOPSIGNAL SIGQUIT", `VOLUME ["/data"]`, "VOLUME /a /b"},
			&Config{User: "www-data:www-data", WorkingDir: "/srv/app", StopSignal: "SIGQUIT", Volumes: []string{"/data", "/a", "/b"}}},
		{[]string{"CMD [\"sh\"]\nENV X=1"}, &Config{Cmd: []string{"sh"}, Env: []string{"X=1"}}},
		// Buildkit's words: the old LABEL form, quotes removed in every
		// form, escapes in double quotes only for " $ \, tabs, variables.
		{[]string{"LABEL a b", `ENV A "x y"`, `WORKDIR "/my app"`, `USER "nobody"`, "STOPSIGNAL 9"},
			&Config{Labels: map[string]string{"a": "b"}, Env: []string{"A=x y"}, WorkingDir: "/my app", User: "nobody", StopSignal: "9"}},
		{[]string{`ENV A="a\nb" B='$HOME' C=\$D`}, &Config{Env: []string{`A=a\nb`, "B=$HOME", "C=$D"}}},
		{[]string{"CMD\techo hi"}, &Config{Cmd: []string{"/bin/sh", "-c", "echo hi"}}},
		{[]string{"ENV PATH=/app/bin:$PATH", "ENV A=1", "ENV B=${A}2 C=$A$A", "WORKDIR /srv/$A", "LABEL v=$B"},
			&Config{Env: []string{"PATH=/app/bin:", "A=1", "B=12", "C=11"}, WorkingDir: "/srv/1", Labels: map[string]string{"v": "12"}}},
		// HEALTHCHECK as buildkit parses it (moby's commit and import),
		// ONBUILD kept as written.
		{[]string{"HEALTHCHECK --interval=5s --timeout=2s --start-period=1m --start-interval=1s --retries=3 CMD curl -f http://localhost/ || exit 1"},
			&Config{Healthcheck: &container.HealthConfig{Test: []string{"CMD-SHELL", "curl -f http://localhost/ || exit 1"},
				Interval: 5 * time.Second, Timeout: 2 * time.Second, StartPeriod: time.Minute, StartInterval: time.Second, Retries: 3}}},
		{[]string{`HEALTHCHECK CMD ["/bin/check", "-q"]`}, &Config{Healthcheck: &container.HealthConfig{Test: []string{"CMD", "/bin/check", "-q"}}}},
		{[]string{"healthcheck none"}, &Config{Healthcheck: &container.HealthConfig{Test: []string{"NONE"}}}},
		{[]string{"HEALTHCHECK\t--retries=1\tCMD\ttrue"}, &Config{Healthcheck: &container.HealthConfig{Test: []string{"CMD-SHELL", "true"}, Retries: 1}}},
		{[]string{`HEALTHCHECK --interval="5s" -- CMD true`}, &Config{Healthcheck: &container.HealthConfig{Test: []string{"CMD-SHELL", "true"}, Interval: 5 * time.Second}}},
		{[]string{"HEALTHCHECK --bogus NONE"}, &Config{Healthcheck: &container.HealthConfig{Test: []string{"NONE"}}}},
		// The shell's modifiers (moby's --change reads words with buildkit's
		// lexer); ENV's values all see the variables from before it.
		{[]string{"ENV A=1", "ENV B=${A:-x} C=${NOPE:-d e} D=${A:+set} E=${NOPE+set} A=2 F=$A", "WORKDIR ${DIR-/srv}"},
			&Config{Env: []string{"B=1", "C=d e", "D=set", "E=", "A=2", "F=1"}, WorkingDir: "/srv"}},
		{[]string{"ONBUILD RUN make", "ONBUILD COPY . /app"}, &Config{OnBuild: []string{"RUN make", "COPY . /app"}}},
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
		"RUN apt-get update":                           "run is not a valid change command",
		"HEALTHCHECK":                                  "HEALTHCHECK requires at least one argument",
		"HEALTHCHECK NONE x":                           "HEALTHCHECK NONE takes no arguments",
		"HEALTHCHECK RUN true":                         `Unknown type "RUN" in HEALTHCHECK (try CMD)`,
		"HEALTHCHECK CMD":                              "Missing command after HEALTHCHECK CMD",
		"HEALTHCHECK --every=5s CMD true":              "unknown flag: --every",
		"HEALTHCHECK --retries CMD true":               "missing a value on flag: --retries",
		"HEALTHCHECK --retries=1 --retries=2 CMD true": "duplicate flag specified: --retries",
		"HEALTHCHECK CMD [1, 2]":                       "arrays must be comprised of strings only",
		"ONBUILD --x RUN y":                            "unknown flag: --x",
		"ONBUILD CMD [1]":                              "arrays must be comprised of strings only",
		"HEALTHCHECK --interval=1us CMD true":          `Interval "interval" cannot be less than 1ms`,
		"HEALTHCHECK --retries=-1 CMD true":            "--retries cannot be negative (-1)",
		"HEALTHCHECK --timeout=soon CMD true":          `time: invalid duration "soon"`,
		"ONBUILD ONBUILD RUN x":                        "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
		"ONBUILD from busybox":                         "FROM isn't allowed as an ONBUILD trigger",
		"ENV A":                                        "ENV must have two arguments",
		`ENV A="open`:                                  "looking for matching double-quote",
		`SHELL ["/bin/bash", "-c"]`:                    "shell is not a valid change command",
		"ENV B=${A:?is required}":                      "A: is required",
		"EXPOSE 99999":                                 "invalid containerPort: 99999",
		"EXPOSE 80/ftp":                                "invalid proto: ftp",
		"LABEL novalue":                                "LABEL must have two arguments",
		"ENV =x":                                       "Syntax error - can't find = in",
		"STOPSIGNAL NOPE":                              "invalid signal: NOPE",
		`VOLUME [""]`:                                  "VOLUME specified can not be an empty string",
		"WORKDIR":                                      "WORKDIR requires exactly one argument",
	} {
		_, err := ParseChanges([]string{change})
		if !errdefs.Is(err, errdefs.KindInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseChanges(%q) = %v, want an Invalid %q", change, err, want)
		}
	}
}
