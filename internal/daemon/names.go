package daemon

import (
	"crypto/rand"
	"math/big"
	"syscall"

	"golang.org/x/sys/unix"
)

// Docker-style generated names: adjective_surname, for containers created without --name.
var (
	adjectives = []string{"admiring", "bold", "brave", "calm", "clever", "eager", "elegant", "focused", "gallant",
		"happy", "jolly", "keen", "kind", "lucid", "nifty", "quirky", "serene", "sharp", "stoic", "tender", "vibrant", "zealous"}
	surnames = []string{"babbage", "cerf", "dijkstra", "hopper", "kahn", "knuth", "lamport", "liskov", "lovelace",
		"metcalfe", "perlman", "postel", "ritchie", "shannon", "thompson", "torvalds", "turing", "wozniak"}
)

func pick(list []string) string {
	n, err := rand.Int(rand.Reader, big.NewInt(int64(len(list))))
	if err != nil {
		return list[0]
	}
	return list[n.Int64()]
}

func randomName() string { return pick(adjectives) + "_" + pick(surnames) }

// unixSignalName is the kernel's name of sig ("SIGTERM").
func unixSignalName(sig syscall.Signal) string { return unix.SignalName(sig) }
