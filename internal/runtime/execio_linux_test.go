package runtime

import (
	"errors"
	"testing"
	"time"
)

// goneClient is the writer of a client that went away.
type goneClient struct{}

func (goneClient) Write([]byte) (int, error) { return 0, errors.New("write: broken pipe") }

// Once the caller's writer fails, the exec's output is still read (and
// dropped), so a process writing more than a pipe holds goes on: the
// copy stopped at the first failure and the process blocked for good.
func TestExecOutputDrainsAfterTheClientGoes(t *testing.T) {
	spec := ExecSpec{Stdout: goneClient{}, Stderr: goneClient{}}
	x, err := newExecIO(spec)
	if err != nil {
		t.Fatal(err)
	}
	x.startCopying(spec)
	wrote := make(chan error, 2)
	go func() {
		_, err := x.childOut.Write(make([]byte, 1<<20)) // 16 times a pipe's default size
		wrote <- err
	}()
	go func() {
		_, err := x.childErr.Write(make([]byte, 1<<20))
		wrote <- err
	}()
	for range 2 {
		select {
		case err := <-wrote:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the process's write blocked: its output is no longer read once the client went away")
		}
	}
	x.closeChildEnds()
	x.finish()
}
