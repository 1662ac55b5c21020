package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/creack/pty"
)

// TestDockerCLIExecTTY runs docker exec -it under a pseudo-terminal: the
// CLI sends a console size, hijacks with Tty=true, forwards raw keystrokes
// and exits with the exec's code.
func TestDockerCLIExecTTY(t *testing.T) {
	f := newFakeBackend()
	var mu sync.Mutex
	var consoleSize [2]uint
	f.startExec = func(_ context.Context, id string, _ bool, s Streams) error {
		info, _ := f.InspectExec(context.Background(), id)
		mu.Lock()
		consoleSize = info.Config.ConsoleSize
		mu.Unlock()
		if s.Stderr != nil {
			return errors.New("a tty exec got a separate stderr")
		}
		b := make([]byte, 3)
		if _, err := io.ReadFull(s.Stdin, b); err != nil {
			return err
		}
		fmt.Fprintf(s.Stdout, "tty got %q\r\n", b)
		f.setExitCode(id, 5)
		return nil
	}
	d := newDockerRunner(t, f)

	cmd := exec.Command(dockerCLI, "exec", "-it", "test1", "sh")
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+d.sock, "DOCKER_CONFIG="+d.config, "DOCKER_CLI_HINTS=false")
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 33, Cols: 99})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ptmx.Close() })
	if _, err := ptmx.Write([]byte("hi\r")); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	copied := make(chan struct{})
	go func() {
		_, _ = io.Copy(&out, ptmx) // ends with EIO once the CLI exited
		close(copied)
	}()
	err = cmd.Wait()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 5 {
		t.Errorf("docker exec -it: %v, want exit status 5", err)
	}
	ptmx.Close()
	<-copied
	// The terminal may turn \r into \n if the keys arrive before the CLI
	// switched it to raw mode; either way they went through the stream.
	if !strings.Contains(out.String(), `tty got "hi\`) {
		t.Errorf("terminal output %q lacks the exec's output", out.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if consoleSize != [2]uint{33, 99} {
		t.Errorf("ConsoleSize = %v, want [33 99] from the terminal", consoleSize)
	}
}
