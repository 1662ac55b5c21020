package cli

import "testing"

// The goldens were written by docker 28 (go test -run TestGolden
// -docker=/usr/local/bin/docker) against the same canned daemon: berth
// must print byte for byte what docker prints.
func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"network-ls", []string{"network", "ls"}},
		{"network-ls-quiet", []string{"network", "ls", "-q"}},
		{"network-ls-no-trunc", []string{"network", "ls", "--no-trunc"}},
		{"network-ls-format", []string{"network", "ls", "--format", "{{.Name}}: {{.Driver}} internal={{.Internal}} env={{.Label \"env\"}} team={{.Label \"com.example.team\"}}"}},
		{"network-ls-format-table", []string{"network", "ls", "--format", "table {{.Name}}\t{{.IPv4}}\t{{.Internal}}\t{{.Label \"env\"}}"}},
		{"network-ls-format-json", []string{"network", "ls", "--format", "{{json .Name}} {{upper .Driver}} {{title .Scope}} {{truncate .ID 4}} {{pad .Name 1 1}}|{{join (split .Name \"e\") \"_\"}}"}},
		{"network-inspect", []string{"network", "inspect", "bridge", "web"}},
		{"network-inspect-format", []string{"network", "inspect", "-f", "{{.Name}} {{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}} {{json .Labels}}", "bridge", "web"}},
		{"network-inspect-json", []string{"network", "inspect", "--format", "json", "web"}},
		{"ps", []string{"ps"}},
		{"ps-all", []string{"ps", "-a"}},
		{"ps-all-quiet", []string{"ps", "-aq"}},
		{"ps-all-no-trunc", []string{"ps", "-a", "--no-trunc"}},
		{"ps-format", []string{"ps", "-a", "--format", "{{.Names}}\t{{.State}}\t{{.Ports}}\t{{.Label \"tier\"}}"}},
		{"ps-format-table", []string{"ps", "-a", "--format", "table {{.ID}}\t{{.Names}}\t{{.Status}}"}},
		{"ps-size", []string{"ps", "-a", "-s"}},
		{"ps-format-size", []string{"ps", "-a", "--format", "{{.Names}} {{.Size}}"}},
		{"ps-quiet-format", []string{"ps", "-aq", "--format", "{{.Names}}"}},
		{"ps-format-platform", []string{"ps", "-a", "--format", "table {{.Names}}\t{{.Platform}}\t{{.LocalVolumes}}"}},
		{"images-format-sizes", []string{"images", "--format", "table {{.ID}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.VirtualSize}}"}},
		{"ps-format-title", []string{"ps", "-a", "--format", "{{title .Command}}|{{title .Status}}"}},
		{"images", []string{"images"}},
		{"images-quiet", []string{"images", "-q"}},
		{"images-format", []string{"images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}}"}},
		{"version-format", []string{"version", "--format", "{{.Server.Version}} {{.Server.APIVersion}} {{.Server.Os}}"}},
		{"inspect-pid", []string{"inspect", "--format", "{{.State.Pid}}", "web1"}},
		{"inspect-ip", []string{"inspect", "--format", "{{.NetworkSettings.IPAddress}}", "web1"}},
		{"inspect-sandbox", []string{"inspect", "-f", "{{.NetworkSettings.SandboxKey}}", "web1"}},
		{"inspect-networks-json", []string{"inspect", "--format", "{{json .NetworkSettings.Networks}}", "web1"}},
		{"inspect-container", []string{"inspect", "web1"}},
		{"inspect-network-fallthrough", []string{"inspect", "-f", "{{.Name}} {{.Driver}}", "bridge"}},
		{"inspect-image", []string{"image", "inspect", "--format", "{{.ID}} {{.RepoTags}} {{.Size}}", "busybox"}},
		{"inspect-state-image", []string{"inspect", "--format", "{{.State.Status}} {{.Config.Image}}", "web1"}},
		{"container-inspect-pid", []string{"container", "inspect", "-f", "{{.State.Pid}} {{.Name}}", "web1"}},
		{"container-ls", []string{"container", "ls", "-a", "--format", "{{.ID}} {{.Names}}"}},
		{"port", []string{"port", "web1"}},
		{"port-one", []string{"port", "web1", "80"}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkGolden(t, tc.name, tc.args...) })
	}
}

// TestTitleAsDocker: docker's title (x/text cases) keeps an underscore
// inside a word; berth's capitalised after it ("My_App").
func TestTitleAsDocker(t *testing.T) {
	for in, want := range map[string]string{"my_app": "My_app", "up 5 seconds": "Up 5 Seconds", "a-b c.d": "A-B C.d", "ALREADY": "ALREADY"} {
		if got := titleCase(in); got != want {
			t.Errorf("title %q = %q, want %q", in, got, want)
		}
	}
}
