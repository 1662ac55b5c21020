package testworld

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
)

// The world's own tests must not wait for the real daemon, so the test
// binary doubles as a fake berth: with fakeEnv set it answers /_ping as a
// daemon, or prints its arguments as a CLI.
const fakeEnv = "TESTWORLD_FAKE_BERTH"

func TestMain(m *testing.M) {
	if os.Getenv(fakeEnv) == "1" {
		os.Exit(fakeBerth(os.Args[1:]))
	}
	os.Setenv(BinaryEnv, os.Args[0])
	os.Setenv(fakeEnv, "1")
	os.Exit(m.Run())
}

func fakeBerth(args []string) int {
	if len(args) > 0 && args[0] == "daemon" {
		return fakeDaemon(args[1:])
	}
	switch {
	case len(args) > 0 && args[0] == "ps":
		return 0 // no containers
	case len(args) > 0 && args[0] == "fail":
		fmt.Fprintln(os.Stderr, "failing as asked")
		return 3
	}
	fmt.Printf("args=%s host=%s\n", strings.Join(args, ","), os.Getenv("BERTH_HOST"))
	return 0
}

// fakeDaemon serves /_ping and /netns (its own network namespace) on --host
// until SIGTERM, then exits 0.
func fakeDaemon(args []string) int {
	fs := flag.NewFlagSet("daemon", flag.ContinueOnError)
	host := fs.String("host", "", "")
	fs.String("data-root", "", "")
	fs.String("exec-root", "", "")
	fs.String("bridge-name", "", "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	sock := strings.TrimPrefix(*host, "unix://")
	os.Remove(sock) // a killed predecessor leaves its socket behind
	l, err := net.Listen("unix", sock)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("fake daemon listening on", sock)
	mux := http.NewServeMux()
	mux.HandleFunc("/_ping", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "OK") })
	mux.HandleFunc("/netns", func(w http.ResponseWriter, _ *http.Request) {
		ino, _ := nsInode("/proc/self/ns/net")
		fmt.Fprint(w, ino)
	})
	go http.Serve(l, mux)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	<-sig
	l.Close()
	return 0
}
