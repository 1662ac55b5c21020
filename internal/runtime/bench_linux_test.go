package runtime

import (
	"context"
	"fmt"
	"testing"

	"github.com/berth-net/berth/internal/nstest"
)

// benchRuntime is newTestRuntime for benchmarks.
func benchRuntime(b *testing.B) (*Runtime, string) {
	b.Helper()
	nstest.RequireRoot(b)
	base := b.TempDir()
	rt, err := New(Config{StateDir: base + "/runc", BundleDir: base + "/containers", DataDir: base + "/data", ReaperDir: base + "/reaper"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { closeAndAwaitReaper(b, rt) })
	return rt, nstest.New(b)
}

// BenchmarkStartWaitDelete is the runtime's share of "berth run --rm":
// overlay mount, bundle, runc run, reap, runc delete, unmount.
func BenchmarkStartWaitDelete(b *testing.B) {
	rt, netns := benchRuntime(b)
	rootfs := busyboxRootfs(b)
	ctx := context.Background()
	var current string
	b.Cleanup(func() { rt.Delete(current) })
	for i := 0; b.Loop(); i++ {
		s := Spec{ID: fmt.Sprintf("bench%d", i), RootfsDir: rootfs, Args: []string{"true"}, NetNSPath: netns}
		current = s.ID
		p, err := rt.Start(ctx, s)
		if err != nil {
			b.Fatal(err)
		}
		if code, err := rt.Wait(ctx, s.ID, p); err != nil || code != 0 {
			b.Fatalf("Wait = %d, %v", code, err)
		}
		if err := rt.Delete(s.ID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExec is one "berth exec C true" as the runtime sees it.
func BenchmarkExec(b *testing.B) {
	rt, netns := benchRuntime(b)
	s := Spec{ID: "benchexec", RootfsDir: busyboxRootfs(b), Args: []string{"sleep", "1000"}, NetNSPath: netns}
	p, err := rt.Start(context.Background(), s)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		rt.Delete(s.ID)
		rt.waitProcess(context.Background(), p)
	})
	for b.Loop() {
		if code, err := rt.Exec(context.Background(), s.ID, ExecSpec{Args: []string{"true"}}); err != nil || code != 0 {
			b.Fatalf("Exec = %d, %v", code, err)
		}
	}
}
