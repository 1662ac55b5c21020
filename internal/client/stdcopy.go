package client

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Stream numbers in a multiplexed frame header.
const (
	StreamStdin     = 0
	StreamStdout    = 1
	StreamStderr    = 2
	StreamSystemErr = 3 // the daemon's own error, sent in-band
)

const frameHeaderLen = 8

// Demux copies a multiplexed stream (8-byte headers: stream, 3 zero bytes,
// big-endian uint32 length, then the payload) to stdout and stderr until src
// ends. A nil writer discards its stream. A systemerr frame ends the copy
// with that frame's text as the error.
func Demux(stdout, stderr io.Writer, src io.Reader) (written int64, err error) {
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	var hdr [frameHeaderLen]byte
	buf := make([]byte, 32*1024)
	for {
		if _, err := io.ReadFull(src, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return written, nil
			}
			return written, fmt.Errorf("read stream header: %w", err)
		}
		size := int(binary.BigEndian.Uint32(hdr[4:]))
		if size > len(buf) {
			buf = make([]byte, size)
		}
		if _, err := io.ReadFull(src, buf[:size]); err != nil {
			return written, fmt.Errorf("read stream frame of %d bytes: %w", size, err)
		}
		var dst io.Writer
		switch hdr[0] {
		case StreamStdin, StreamStdout:
			dst = stdout
		case StreamStderr:
			dst = stderr
		case StreamSystemErr:
			return written, &SystemError{Message: string(buf[:size])}
		default:
			return written, fmt.Errorf("unknown stream id %d in multiplexed stream", hdr[0])
		}
		n, err := dst.Write(buf[:size])
		written += int64(n)
		if err != nil {
			return written, err
		}
	}
}

// FrameWriter writes payloads as frames of one stream; the fake servers in
// tests (and anything else that must produce a multiplexed stream) use it.
type FrameWriter struct {
	W      io.Writer
	Stream byte
}

// Write sends p as one frame.
func (f FrameWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var hdr [frameHeaderLen]byte
	hdr[0] = f.Stream
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(p)))
	if _, err := f.W.Write(hdr[:]); err != nil {
		return 0, err
	}
	return f.W.Write(p)
}

// SystemError is an error the daemon reported inside a multiplexed stream
// (stream 3), e.g. that the exec'd command could not be started.
type SystemError struct{ Message string }

func (e *SystemError) Error() string { return e.Message }
