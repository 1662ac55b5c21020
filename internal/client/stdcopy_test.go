package client_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/berth-net/berth/internal/client"
)

func frame(stream byte, payload string) []byte {
	var b bytes.Buffer
	_, _ = client.FrameWriter{W: &b, Stream: stream}.Write([]byte(payload))
	return b.Bytes()
}

func TestDemux(t *testing.T) {
	for _, tc := range []struct {
		name           string
		in             []byte
		stdout, stderr string
		wantErr        bool
		systemErr      string
	}{
		{name: "empty"},
		{name: "both streams in order", in: bytes.Join([][]byte{frame(1, "a"), frame(2, "b"), frame(1, "c")}, nil), stdout: "ac", stderr: "b"},
		{name: "large frame", in: frame(1, string(bytes.Repeat([]byte("x"), 100000))), stdout: string(bytes.Repeat([]byte("x"), 100000))},
		{name: "truncated header", in: []byte{1, 0, 0}, wantErr: true},
		{name: "truncated payload", in: frame(1, "hello")[:10], wantErr: true},
		{name: "unknown stream", in: frame(7, "x"), wantErr: true},
		{name: "system error ends the copy", in: bytes.Join([][]byte{frame(1, "out"), frame(3, "exec failed"), frame(1, "never")}, nil), stdout: "out", wantErr: true, systemErr: "exec failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			_, err := client.Demux(&out, &errb, bytes.NewReader(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			var se *client.SystemError
			if tc.systemErr != "" && (!errors.As(err, &se) || se.Message != tc.systemErr) {
				t.Errorf("err = %v, want system error %q", err, tc.systemErr)
			}
			if out.String() != tc.stdout || errb.String() != tc.stderr {
				t.Errorf("stdout %q stderr %q, want %q %q", out.String(), errb.String(), tc.stdout, tc.stderr)
			}
		})
	}
}
