package container

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestLinkEnv checks LinkEnv against what moby's links.ToEnv writes for
// the same link (its links_test.go cases, and a run of ports).
func TestLinkEnv(t *testing.T) {
	tests := []struct {
		name    string
		link    string
		env     []string
		exposed []string
		want    []string
	}{
		{
			name: "one port and the child's environment", link: "/db/docker", env: []string{"PASSWORD=gordon", "PATH=/bin", "HOME=/root", "NOEQUALS"},
			exposed: []string{"6379/tcp"},
			want: []string{
				"DOCKER_PORT=tcp://172.0.17.2:6379",
				"DOCKER_PORT_6379_TCP=tcp://172.0.17.2:6379",
				"DOCKER_PORT_6379_TCP_ADDR=172.0.17.2",
				"DOCKER_PORT_6379_TCP_PORT=6379",
				"DOCKER_PORT_6379_TCP_PROTO=tcp",
				"DOCKER_NAME=/db/docker",
				"DOCKER_ENV_PASSWORD=gordon",
			},
		},
		{
			name: "a run of ports, UDP after TCP, dashes in the alias", link: "/web/my-db",
			exposed: []string{"6381/tcp", "53/udp", "6379/tcp", "6380/tcp"},
			want: []string{
				"MY_DB_PORT=tcp://172.0.17.2:6379",
				"MY_DB_PORT_6379_TCP=tcp://172.0.17.2:6379",
				"MY_DB_PORT_6379_TCP_ADDR=172.0.17.2",
				"MY_DB_PORT_6379_TCP_PORT=6379",
				"MY_DB_PORT_6379_TCP_PROTO=tcp",
				"MY_DB_PORT_6380_TCP=tcp://172.0.17.2:6380",
				"MY_DB_PORT_6380_TCP_ADDR=172.0.17.2",
				"MY_DB_PORT_6380_TCP_PORT=6380",
				"MY_DB_PORT_6380_TCP_PROTO=tcp",
				"MY_DB_PORT_6381_TCP=tcp://172.0.17.2:6381",
				"MY_DB_PORT_6381_TCP_ADDR=172.0.17.2",
				"MY_DB_PORT_6381_TCP_PORT=6381",
				"MY_DB_PORT_6381_TCP_PROTO=tcp",
				// moby writes a port's own variables before it closes
				// the run the port does not continue.
				"MY_DB_PORT_53_UDP=udp://172.0.17.2:53",
				"MY_DB_PORT_53_UDP_ADDR=172.0.17.2",
				"MY_DB_PORT_53_UDP_PORT=53",
				"MY_DB_PORT_53_UDP_PROTO=udp",
				"MY_DB_PORT_6379_TCP_START=tcp://172.0.17.2:6379",
				"MY_DB_PORT_6379_TCP_PORT_START=6379",
				"MY_DB_PORT_6379_TCP_END=tcp://172.0.17.2:6381",
				"MY_DB_PORT_6379_TCP_PORT_END=6381",
				"MY_DB_NAME=/web/my-db",
			},
		},
		{name: "no ports", link: "/a/b", want: []string{"B_NAME=/a/b"}},
	}
	for _, tt := range tests {
		got := LinkEnv(tt.link, "172.0.17.2", tt.env, tt.exposed)
		if d := cmp.Diff(tt.want, got); d != "" {
			t.Errorf("%s: LinkEnv (-want +got):\n%s", tt.name, d)
		}
	}
}

func TestParseLink(t *testing.T) {
	tests := []struct {
		in, name, alias, err string
	}{
		{in: "db", name: "db", alias: "db"},
		{in: "db:database", name: "db", alias: "database"},
		{in: "/db:/web/database", name: "db", alias: "database"},
		{in: "", err: "empty string specified for links"},
		{in: "a:b:c", err: "bad format for links: a:b:c"},
	}
	for _, tt := range tests {
		name, alias, err := ParseLink(tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("ParseLink(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || name != tt.name || alias != tt.alias {
			t.Errorf("ParseLink(%q) = %q, %q, %v; want %q, %q", tt.in, name, alias, err, tt.name, tt.alias)
		}
	}
}
