package daemon

import (
	"regexp"
	"strconv"
	"testing"

	"github.com/berth-net/berth/internal/container"
)

// namesTaken is a daemon whose containers hold the given names.
func namesTaken(names []string) *Daemon {
	d := &Daemon{containers: map[string]*ctrState{}}
	for i, n := range names {
		id := strconv.Itoa(i)
		d.containers[id] = newCtrState(&container.Container{ID: id, Name: n})
	}
	return d
}

// everyPair is every generated adjective_surname, and with digits each
// of them with each retry digit too.
func everyPair(digits bool) []string {
	var names []string
	for _, a := range adjectives {
		for _, s := range surnames {
			names = append(names, a+"_"+s)
			for digit := range 10 {
				if digits {
					names = append(names, a+"_"+s+strconv.Itoa(digit))
				}
			}
		}
	}
	return names
}

func TestFreeNameIsFreeAndDockerShaped(t *testing.T) {
	d := namesTaken([]string{"calm_turing"})
	// A digit when the first pick was the taken name (1 in 3,840 a call).
	shape := regexp.MustCompile(`^[a-z]+_[a-z]+[0-9]?$`)
	for range 200 {
		n := d.freeNameLocked("0123456789abcdef0123")
		if !shape.MatchString(n) || n == "calm_turing" {
			t.Fatalf("freeNameLocked = %q, want a free adjective_surname", n)
		}
	}
}

// Every pair taken, with and without a digit: the create must still get
// a name (the short ID) instead of spinning under d.mu, which hung the
// daemon at the 397th unnamed container when the lists had 396 pairs.
func TestFreeNameEndsWhenEveryNameIsTaken(t *testing.T) {
	d := namesTaken(everyPair(true))
	if n := d.freeNameLocked("0123456789abcdef0123"); n != "0123456789ab" {
		t.Fatalf("freeNameLocked with every name taken = %q, want the short ID 0123456789ab", n)
	}
}

// With the plain pairs taken, a retry's digit finds a free name.
func TestFreeNameRetriesWithADigit(t *testing.T) {
	d := namesTaken(everyPair(false))
	shape := regexp.MustCompile(`^[a-z]+_[a-z]+[0-9]$`)
	if n := d.freeNameLocked("0123456789abcdef0123"); !shape.MatchString(n) {
		t.Fatalf("freeNameLocked with every pair taken = %q, want adjective_surname and a digit", n)
	}
}
