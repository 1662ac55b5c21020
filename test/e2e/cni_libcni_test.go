package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/berth-net/berth/internal/cni"
	"github.com/berth-net/berth/internal/nstest"
	"github.com/berth-net/berth/internal/testworld"
)

// referencePlugins is where Debian's containernetworking-plugins keeps the
// reference plugins (scripts/test installs them).
const referencePlugins = "/usr/lib/cni"

// hostExec runs plugins as a runtime on the world's host would: in the
// host's mount and network namespaces (libcni's own RawExec runs them in
// the caller's, the test process's).
type hostExec struct {
	t *testing.T
	w *testworld.World
}

func (e hostExec) ExecPlugin(ctx context.Context, pluginPath string, stdin []byte, environ []string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "nsenter", "-t", strconv.Itoa(e.w.HolderPID()), "-m", "-n", "--", pluginPath)
	cmd.Env, cmd.Stdin = environ, bytes.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	e.t.Logf("libcni$ %s %s\n%s%s", filepath.Base(pluginPath), commandOf(environ), out.String(), errOut.String())
	if err != nil {
		var cniErr types.Error
		if json.Unmarshal(out.Bytes(), &cniErr) == nil && cniErr.Msg != "" {
			return nil, &cniErr
		}
		return nil, fmt.Errorf("%s: %w: %s", pluginPath, err, errOut.String())
	}
	return out.Bytes(), nil
}

func (e hostExec) FindInPath(plugin string, paths []string) (string, error) {
	return invoke.FindInPath(plugin, paths)
}

func (e hostExec) Decode(b []byte) (version.PluginInfo, error) {
	return (&version.PluginDecoder{}).Decode(b)
}

func commandOf(environ []string) string {
	for _, kv := range environ {
		if c, ok := strings.CutPrefix(kv, "CNI_COMMAND="); ok {
			return c
		}
	}
	return ""
}

// TestCNIThroughLibcni drives berth-cni with libcni, the library
// containerd, CRI-O and Podman's CNI backend call plugins through, in a
// network list where it is followed by the reference tuning plugin: the
// version check, the portMappings capability, the prevResult handed to
// the next plugin, CHECK and DEL through libcni's cache, and, with a
// 1.1.0 list, STATUS and GC.
func TestCNIThroughLibcni(t *testing.T) {
	if _, err := os.Stat(filepath.Join(referencePlugins, "tuning")); err != nil {
		nstest.Unavailable(t, "the reference CNI plugins are not installed (apt-get install containernetworking-plugins)")
	}
	c := newCNIWorld(t)
	ns := c.netns(t, "pod1")
	ctx := context.Background()
	cninet := libcni.NewCNIConfigWithCacheDir([]string{filepath.Dir(c.bin), referencePlugins}, filepath.Join(c.Dir, "cni-cache"), hostExec{t, c.World})

	list, err := libcni.ConfListFromBytes([]byte(fmt.Sprintf(`{"cniVersion":"1.0.0","name":"podnet","plugins":[
		{"type":%q,"bridge":"cni0","isGateway":true,"isDefaultGateway":true,"ipMasq":true,"dataDir":%q,
		 "capabilities":{"portMappings":true},"ipam":{"type":"host-local","subnet":"10.93.0.0/24"}},
		{"type":"tuning","sysctl":{"net.core.somaxconn":"512"}}]}`, filepath.Base(c.bin), c.dataDir)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cninet.ValidateNetworkList(ctx, list); err != nil {
		t.Fatalf("ValidateNetworkList: %v", err)
	}
	rt := &libcni.RuntimeConf{ContainerID: "pod1", NetNS: ns, IfName: "eth0", CapabilityArgs: map[string]any{
		"portMappings": []map[string]any{{"hostPort": 8081, "containerPort": 80, "protocol": "tcp"}},
	}}
	res, err := cninet.AddNetworkList(ctx, list, rt)
	if err != nil {
		t.Fatalf("AddNetworkList: %v", err)
	}
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.IPs) != 1 || r.IPs[0].Address.String() != "10.93.0.2/24" || r.IPs[0].Gateway.String() != "10.93.0.1" {
		t.Fatalf("result after the list: %+v", r)
	}
	if got := strings.TrimSpace(c.MustInHost(t, "ip", "netns", "exec", "pod1", "cat", "/proc/sys/net/core/somaxconn")); got != "512" {
		t.Errorf("somaxconn in the pod = %s: tuning did not run after berth-cni with its result", got)
	}
	if nft := c.MustInHost(t, "nft", "list", "table", "inet", cni.TableNameFor(c.dataDir)); !strings.Contains(nft, "8081") {
		t.Errorf("the portMappings capability did not reach berth-cni:\n%s", nft)
	}
	if err := cninet.CheckNetworkList(ctx, list, rt); err != nil {
		t.Errorf("CheckNetworkList: %v", err)
	}
	if err := cninet.DelNetworkList(ctx, list, rt); err != nil {
		t.Fatalf("DelNetworkList: %v", err)
	}
	if v := c.vethsSettled(t, 0); len(v) != 0 {
		t.Errorf("veths after DelNetworkList: %v", v)
	}

	// CNI 1.1: STATUS, and GC of an attachment the runtime no longer lists.
	list11, err := libcni.ConfListFromBytes([]byte(fmt.Sprintf(`{"cniVersion":"1.1.0","name":"podnet11","plugins":[
		{"type":%q,"bridge":"cni1","isGateway":true,"dataDir":%q,"ipam":{"type":"host-local","subnet":"10.94.0.0/24"}}]}`,
		filepath.Base(c.bin), c.dataDir)))
	if err != nil {
		t.Fatal(err)
	}
	if err := cninet.GetStatusNetworkList(ctx, list11); err != nil {
		t.Errorf("GetStatusNetworkList: %v", err)
	}
	if _, err := cninet.AddNetworkList(ctx, list11, &libcni.RuntimeConf{ContainerID: "pod2", NetNS: ns, IfName: "eth1"}); err != nil {
		t.Fatalf("AddNetworkList 1.1.0: %v", err)
	}
	if err := cninet.GCNetworkList(ctx, list11, &libcni.GCArgs{}); err != nil {
		t.Fatalf("GCNetworkList: %v", err)
	}
	if v := c.vethsSettled(t, 0); len(v) != 0 {
		t.Errorf("veths after GCNetworkList with no valid attachment: %v", v)
	}
	// A plugin error reaches the runtime as a CNI error with its code.
	_, err = cninet.AddNetworkList(ctx, list11, &libcni.RuntimeConf{ContainerID: "pod3", NetNS: "/nonexistent", IfName: "eth0"})
	var cniErr *types.Error
	if !errors.As(err, &cniErr) || cniErr.Msg == "" {
		t.Errorf("ADD into a missing namespace: %v (%T), want a CNI error", err, err)
	}
}
