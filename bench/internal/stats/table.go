package stats

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Table is the bench command's one output: a Markdown pipe table whose
// columns are padded so that it reads as well in a terminal as in the
// README. A section is a row holding only its name, in bold.
type Table struct {
	header []string
	rows   [][]string
}

// NewTable starts a table with the given column names.
func NewTable(columns ...string) *Table { return &Table{header: columns} }

// Section starts a group of rows.
func (t *Table) Section(name string) {
	row := make([]string, len(t.header))
	row[0] = "**" + name + "**"
	t.rows = append(t.rows, row)
}

// Add appends a row; missing cells are blank and extra cells are dropped.
func (t *Table) Add(cells ...string) {
	row := make([]string, len(t.header))
	copy(row, cells)
	t.rows = append(t.rows, row)
}

// Render writes the table. Cells are escaped so that a "|" in a note does
// not split a column.
func (t *Table) Render(w io.Writer) error {
	widths := make([]int, len(t.header))
	all := append([][]string{t.header}, t.rows...)
	for _, row := range all {
		for i, c := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(escape(c)))
		}
	}
	var b strings.Builder
	writeRow(&b, t.header, widths)
	rule := make([]string, len(widths))
	for i, n := range widths {
		rule[i] = strings.Repeat("-", max(n, 3))
	}
	writeRow(&b, rule, widths)
	for _, row := range t.rows {
		writeRow(&b, row, widths)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeRow(b *strings.Builder, row []string, widths []int) {
	b.WriteString("|")
	for i, c := range row {
		c = escape(c)
		b.WriteString(" ")
		b.WriteString(c)
		b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)))
		b.WriteString(" |")
	}
	b.WriteString("\n")
}

func escape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// MS formats d in milliseconds with a precision that suits its size:
// 0.184, 2.41, 31.7, 412.
func MS(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch abs := math.Abs(ms); {
	case abs < 1:
		return fmt.Sprintf("%.3f", ms)
	case abs < 10:
		return fmt.Sprintf("%.2f", ms)
	case abs < 100:
		return fmt.Sprintf("%.1f", ms)
	}
	return fmt.Sprintf("%.0f", ms)
}

// Triple formats a summary as "median / p95 / p99" in milliseconds.
func Triple(s Summary) string {
	if s.N == 0 {
		return "-"
	}
	return MS(s.Median) + " / " + MS(s.P95) + " / " + MS(s.P99)
}

// Pair formats a summary as "median / p95" in milliseconds.
func Pair(s Summary) string {
	if s.N == 0 {
		return "-"
	}
	return MS(s.Median) + " / " + MS(s.P95)
}

// X formats a ratio as "1.07×", or "-" when it is not a number.
func X(r float64) string {
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return "-"
	}
	return fmt.Sprintf("%.2f×", r)
}

// Bytes formats a size in MiB.
func Bytes(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// Gbits formats a throughput in bits per second as Gbit/s.
func Gbits(bps float64) string {
	if bps <= 0 || math.IsNaN(bps) {
		return "-"
	}
	return fmt.Sprintf("%.2f Gbit/s", bps/1e9)
}

// Rate formats a number of events per second, e.g. "7,412/s".
func Rate(perSecond float64) string {
	if perSecond <= 0 || math.IsNaN(perSecond) || math.IsInf(perSecond, 0) {
		return "-"
	}
	n := int64(math.Round(perSecond))
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s + "/s"
}

// Rounds formats per-round ratios as their range and how many of them are
// at most limit, e.g. "rounds 1.05–1.62×, 7 of 12 ≤ 1.30×"; "" for none.
func Rounds(r []float64, limit float64) string {
	if len(r) == 0 {
		return ""
	}
	lo, hi, within := math.Inf(1), math.Inf(-1), 0
	for _, x := range r {
		lo, hi = min(lo, x), max(hi, x)
		if x <= limit {
			within++
		}
	}
	return fmt.Sprintf("rounds %.2f–%.2f×, %d of %d ≤ %.2f×", lo, hi, within, len(r), limit)
}
