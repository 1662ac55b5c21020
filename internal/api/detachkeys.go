package api

import (
	"fmt"
	"strings"
)

// detachKeys reads a detach-key sequence as moby's term.ToBytes does:
// comma-separated keys, each a single character, "ctrl-@" through
// "ctrl-z", "ctrl-[", "ctrl-\\", "ctrl-]", "ctrl-^", "ctrl-_", or "DEL".
// berth checks it, as moby refuses a bad one before attaching; the docker
// CLI watches for the sequence itself on a terminal.
func detachKeys(keys string) ([]byte, error) {
	var codes []byte
	for _, key := range strings.Split(keys, ",") {
		switch {
		case len(key) == 1:
			codes = append(codes, key[0])
		case key == "DEL":
			codes = append(codes, 127)
		case len(key) == 6 && strings.HasPrefix(key, "ctrl-") && (key[5] >= 'a' && key[5] <= 'z' || strings.ContainsRune("@[\\]^_", rune(key[5]))):
			c := key[5]
			if c >= 'a' && c <= 'z' {
				c -= 'a' - 'A'
			}
			codes = append(codes, c-'@')
		default:
			return nil, fmt.Errorf("unknown character: '%s'", key)
		}
	}
	return codes, nil
}
