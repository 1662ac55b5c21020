package daemon

import (
	"crypto/rand"
	"math/big"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// Docker-style generated names: adjective_surname, for containers created
// without --name. 60 × 64 = 3,840 pairs, ten times that with the digit a
// retry appends; past them a container is named by its short ID.
var (
	adjectives = []string{"admiring", "agile", "amazing", "awesome", "blissful", "bold", "brave", "bright",
		"busy", "calm", "charming", "cheerful", "clever", "cool", "curious", "daring", "dazzling", "eager",
		"elegant", "epic", "fervent", "festive", "focused", "friendly", "funny", "gallant", "gentle", "happy",
		"hopeful", "humble", "jolly", "jovial", "keen", "kind", "lively", "loving", "lucid", "merry",
		"modest", "nice", "nifty", "noble", "patient", "peaceful", "pensive", "playful", "proud", "quirky",
		"relaxed", "serene", "sharp", "stoic", "sweet", "tender", "thirsty", "trusting", "upbeat", "vibrant",
		"wizardly", "zealous"}
	surnames = []string{"allen", "babbage", "backus", "baran", "bell", "berners", "boole", "cerf",
		"clark", "codd", "conway", "cray", "davies", "dijkstra", "engelbart", "estrin", "feistel", "floyd",
		"gray", "hamming", "hellman", "hoare", "hopper", "huffman", "iverson", "jacobson", "kahn", "kay",
		"kernighan", "kleinrock", "knuth", "lamport", "lampson", "licklider", "liskov", "lovelace", "mccarthy", "metcalfe",
		"minsky", "mockapetris", "naur", "neumann", "nygaard", "pascal", "perlis", "perlman", "postel", "rabin",
		"ritchie", "rivest", "shamir", "shannon", "sutherland", "tanenbaum", "tarjan", "thacker", "thompson", "torvalds",
		"turing", "wilkes", "wirth", "wozniak", "yao", "zuse"}
)

// randomIndex is a uniform index into a list of n.
func randomIndex(n int) int {
	i, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		return 0
	}
	return int(i.Int64())
}

// randomName is a generated name; from the first retry on it ends in a
// random digit, as moby's namesgenerator.GetRandomName(retry) does.
func randomName(retry int) string {
	name := adjectives[randomIndex(len(adjectives))] + "_" + surnames[randomIndex(len(surnames))]
	if retry > 0 {
		name += strconv.Itoa(randomIndex(10))
	}
	return name
}

// nameTries is how many generated names a create tries before it names
// the container by its short ID (moby's generateAndReserveName: 6).
const nameTries = 6

// unixSignalName is the kernel's name of sig ("SIGTERM").
func unixSignalName(sig syscall.Signal) string { return unix.SignalName(sig) }
