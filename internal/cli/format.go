package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"
	"text/tabwriter"
	"text/template"

	"golang.org/x/text/cases"
	"golang.org/x/text/language"
)

// Format keywords, as docker's --format accepts them.
const (
	tableKey   = "table"
	jsonKey    = "json"
	jsonFormat = "{{json .}}"
)

// templateFuncs are the functions docker's templates offer beyond Go's
// builtins (println, printf, index, len …).
var templateFuncs = template.FuncMap{
	"json":     jsonString,
	"split":    strings.Split,
	"join":     strings.Join,
	"title":    titleCase,
	"lower":    strings.ToLower,
	"upper":    strings.ToUpper,
	"pad":      padSpaces,
	"truncate": truncateTo,
}

// headerFuncs replace templateFuncs when a table's header row is rendered:
// the header cells are plain strings, so every function passes them through.
var headerFuncs = template.FuncMap{
	"json":     func(v string) string { return v },
	"split":    func(v, _ string) string { return v },
	"join":     func(v, _ string) string { return v },
	"title":    func(v string) string { return v },
	"lower":    func(v string) string { return v },
	"upper":    func(v string) string { return v },
	"truncate": func(v string, _ int) string { return v },
}

func jsonString(v any) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSpace(buf.String()), nil
}

// titleCase upper-cases the first letter of each word (strings.Title is
// deprecated for Unicode reasons that do not matter for these ASCII fields).
// titleCase is docker's title: Unicode word boundaries (an underscore
// joins a word: "my_app" is "My_app"), the rest left as it is.
func titleCase(s string) string { return cases.Title(language.Und, cases.NoLower).String(s) }

func padSpaces(s string, prefix, suffix int) string {
	if s == "" {
		return s
	}
	return strings.Repeat(" ", prefix) + s + strings.Repeat(" ", suffix)
}

func truncateTo(s string, n int) string {
	if len(s) < n {
		return s
	}
	return s[:n]
}

// parseTemplate parses a user's --format with docker's functions.
func parseTemplate(format string) (*template.Template, error) {
	t, err := template.New("").Funcs(templateFuncs).Parse(format)
	if err != nil {
		return nil, fmt.Errorf("template parsing error: %w", err)
	}
	return t, nil
}

// headerRow names the columns of a table; rendering a row's template on it
// yields the header line.
type headerRow map[string]string

// Label makes {{.Label "com.example.x"}} render as a header: the last
// dotted part with dashes and underscores as spaces, as docker does.
func (h headerRow) Label(name string) string {
	parts := strings.Split(name, ".")
	return strings.NewReplacer("-", " ", "_", " ").Replace(parts[len(parts)-1])
}

// writeList renders rows with format: "table ..." aligns columns under a
// header the way docker does (tabwriter, min width 10, padding 3), "json"
// prints one JSON object per row, anything else is a bare template per row.
func writeList(w io.Writer, format string, header headerRow, rows []any) error {
	table := strings.HasPrefix(format, tableKey)
	final := format
	switch {
	case table:
		final = final[len(tableKey):]
	case format == jsonKey:
		final = jsonFormat
	}
	final = strings.Trim(final, " ")
	final = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(final)
	tmpl, err := parseTemplate(final)
	if err != nil {
		return err
	}
	var body bytes.Buffer
	for _, row := range rows {
		if err := tmpl.Execute(&body, row); err != nil {
			return fmt.Errorf("template parsing error: %w", err)
		}
		body.WriteByte('\n')
	}
	if !table {
		_, err := body.WriteTo(w)
		return err
	}
	tw := tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
	// A header the template cannot render (e.g. a function docker has no
	// header form for) is left as far as it got, as docker does.
	_ = tmpl.Funcs(headerFuncs).Execute(tw, header)
	_, _ = tw.Write([]byte("\n"))
	_, _ = body.WriteTo(tw)
	return tw.Flush()
}

// listFormat picks the format for a list command the way docker's images
// and network ls do: quiet wins over table defaults, and a custom format
// wins over quiet (docker ps differs: quiet wins).
func listFormat(format string, quiet bool, table, quietFormat string) string {
	switch format {
	case "", tableKey:
		if quiet {
			return quietFormat
		}
		return table
	default:
		return format
	}
}

// marshalMethods encodes a row context as a JSON object of its exported
// methods that take no arguments and return one value — the fields a
// template can use — so that --format json shows exactly those.
func marshalMethods(v any) ([]byte, error) {
	val := reflect.ValueOf(v)
	typ := val.Type()
	m := make(map[string]any)
	for i := range val.NumMethod() {
		meth := typ.Method(i)
		fn := val.Method(i)
		if fn.Type().NumIn() != 0 || fn.Type().NumOut() != 1 {
			continue
		}
		m[meth.Name] = fn.Call(nil)[0].Interface()
	}
	return json.Marshal(m)
}

// joinLabels renders a label map as docker's sorted k=v,k=v.
func joinLabels(labels map[string]string) string {
	if labels == nil {
		return ""
	}
	kv := make([]string, 0, len(labels))
	for k, v := range labels {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

// ellipsis shortens s to at most n runes, the last being "…".
func ellipsis(s string, n int) string {
	rs := []rune(s)
	if len(rs) <= n {
		return s
	}
	if n <= 1 {
		return string(rs[:n])
	}
	return string(rs[:n-1]) + "…"
}

// naturalLess orders names with embedded numbers numerically ("net2" <
// "net10"), as docker sorts network ls.
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := isDigit(a[0]), isDigit(b[0])
		if da && db {
			na, ra := splitDigits(a)
			nb, rb := splitDigits(b)
			ta, tb := strings.TrimLeft(na, "0"), strings.TrimLeft(nb, "0")
			if len(ta) != len(tb) {
				return len(ta) < len(tb)
			}
			if ta != tb {
				return ta < tb
			}
			a, b = ra, rb
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func splitDigits(s string) (digits, rest string) {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return s[:i], s[i:]
}
