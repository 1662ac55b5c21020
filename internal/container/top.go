package container

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Top is docker top's answer: ps's column titles and the rows of the
// container's processes.
type Top struct {
	Titles    []string
	Processes [][]string
}

// psArgsRE finds "k=PID…" in ps arguments: a renamed PID column.
var psArgsRE = regexp.MustCompile(`\s+([^\s]*)=\s*(PID[^\s]*)`)

// CheckPSArgs refuses ps arguments that rename the PID column, which the
// rows are matched by, as moby's validatePSArgs.
func CheckPSArgs(psArgs string) error {
	for _, g := range psArgsRE.FindAllStringSubmatch(psArgs, -1) {
		if len(g) >= 3 && g[1] != "pid" {
			return fmt.Errorf("specifying \"%s=%s\" is not allowed", g[1], g[2])
		}
	}
	return nil
}

// PSPidsArg is ps's "-q" with the container's PIDs, which asks ps for
// those processes only.
func PSPidsArg(pids []int) string {
	b := []byte("-q")
	for i, p := range pids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(p), 10)
	}
	return string(b)
}

// ParsePS reads ps's output as moby's parsePSOutput: the first line's
// fields are the titles; a row is kept if its PID is one of pids (and a
// row whose PID is "-", a thread, if the row before it was kept); the
// last column takes the rest of the line (the command with its spaces).
func ParsePS(output string, pids []int) (Top, error) {
	lines := strings.Split(output, "\n")
	top := Top{Titles: strings.Fields(lines[0]), Processes: [][]string{}}
	pidCol := slices.Index(top.Titles, "PID")
	if pidCol < 0 {
		return Top{}, fmt.Errorf("Couldn't find PID field in ps output")
	}
	kept := false
	for _, line := range lines[1:] {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) < len(top.Titles) {
			return Top{}, fmt.Errorf("unexpected ps output line %q", line)
		}
		add := func() {
			n := len(top.Titles) - 1
			row := append(slices.Clone(fields[:n]), strings.Join(fields[n:], " "))
			top.Processes = append(top.Processes, row)
		}
		if fields[pidCol] == "-" {
			if kept {
				add()
			}
			continue
		}
		p, err := strconv.Atoi(fields[pidCol])
		if err != nil {
			return Top{}, fmt.Errorf("Unexpected pid '%s': %s", fields[pidCol], err)
		}
		kept = slices.Contains(pids, p)
		if kept {
			add()
		}
	}
	return top, nil
}

// PathStat is what docker cp learns of a path in a container (moby's
// container.PathStat).
type PathStat struct {
	Name  string
	Size  int64
	Mode  os.FileMode
	Mtime time.Time
	// LinkTarget is where a symlink leads, all its links followed inside
	// the container, or as far as they go.
	LinkTarget string
}

// Change is one entry of docker diff: a path of the root file system and
// what happened to it, with moby's kinds.
type Change struct {
	Path string
	Kind ChangeKind
}

// ChangeKind is moby's ChangeType: 0 modified, 1 added, 2 deleted.
type ChangeKind uint8

const (
	ChangeModified ChangeKind = 0
	ChangeAdded    ChangeKind = 1
	ChangeDeleted  ChangeKind = 2
)
