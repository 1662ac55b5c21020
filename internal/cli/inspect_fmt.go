package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/template"

	"github.com/berth-net/berth/internal/client"
	"github.com/spf13/cobra"
)

// getRefFunc fetches one object: its typed value (what templates run on)
// and the raw JSON the daemon sent (what is printed without a template).
type getRefFunc func(ref string) (typed any, raw []byte, err error)

// newKindInspectCommand is `container inspect`, `image inspect` and
// `network inspect`: one kind of object, a --format flag, inspectRefs.
func newKindInspectCommand(e *env, use, short string,
	get func(ctx context.Context, c *client.Client, ref string) (any, []byte, error)) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			return inspectRefs(e.out, args, format, func(ref string) (any, []byte, error) {
				return get(cmd.Context(), c, ref)
			})
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template")
	return cmd
}

// inspectRefs prints each ref's object the way docker's inspect does:
// without a format, one JSON array of the raw objects indented by four
// spaces; "json", the same compacted; otherwise the template once per
// object. Errors are collected, and the ones found are printed after the
// objects that worked.
func inspectRefs(w io.Writer, refs []string, format string, get getRefFunc) error {
	var tmpl *template.Template
	if format != "" && format != jsonKey {
		t, err := parseTemplate(format)
		if err != nil {
			return StatusError{Status: err.Error(), StatusCode: 64}
		}
		tmpl = t
	}
	var (
		errs []error
		raws [][]byte
		out  bytes.Buffer
	)
	for _, ref := range refs {
		typed, raw, err := get(ref)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if tmpl == nil {
			raws = append(raws, raw)
			continue
		}
		if err := executeInspect(&out, tmpl, typed, raw); err != nil {
			errs = append(errs, err)
		}
	}
	if tmpl == nil {
		if err := writeRawArray(&out, raws, format == jsonKey); err != nil {
			errs = append(errs, err)
		}
	} else if out.Len() == 0 {
		out.WriteByte('\n')
	}
	if _, err := out.WriteTo(w); err != nil {
		return err
	}
	if err := errors.Join(errs...); err != nil {
		return StatusError{Status: err.Error(), StatusCode: 1}
	}
	return nil
}

// executeInspect runs tmpl on the typed object; if that fails (a field the
// typed struct lacks), it retries on the raw JSON as a map, strictly.
func executeInspect(out *bytes.Buffer, tmpl *template.Template, typed any, raw []byte) error {
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, typed); err != nil {
		if raw == nil {
			return fmt.Errorf("template parsing error: %w", err)
		}
		buf.Reset()
		var m any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			return fmt.Errorf("unable to read inspect data: %w", err)
		}
		if err := tmpl.Option("missingkey=error").Execute(&buf, m); err != nil {
			return fmt.Errorf("template parsing error: %w", err)
		}
	}
	out.Write(buf.Bytes())
	out.WriteByte('\n')
	return nil
}

func writeRawArray(out *bytes.Buffer, raws [][]byte, compact bool) error {
	if len(raws) == 0 {
		out.WriteString("[]\n")
		return nil
	}
	joined := append([]byte("["), bytes.Join(raws, []byte(","))...)
	joined = append(joined, ']')
	var err error
	if compact {
		err = json.Compact(out, joined)
	} else {
		err = json.Indent(out, joined, "", "    ")
	}
	if err != nil {
		return fmt.Errorf("format inspect output: %w", err)
	}
	out.WriteByte('\n')
	return nil
}
