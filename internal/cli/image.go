package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/berth-net/berth/internal/client"
	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/reference"
)

func newImageCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Manage images",
		Args:  noArgs,
		RunE:  showHelp,
	}
	ls := newImagesCommand(e)
	ls.Use, ls.Aliases = "ls [OPTIONS] [REPOSITORY[:TAG]]", []string{"list"}
	rm := newRmiCommand(e)
	rm.Use, rm.Aliases = "rm [OPTIONS] IMAGE [IMAGE...]", []string{"remove", "rmi"}
	cmd.AddCommand(newImportCommand(e), ls, rm, newImageInspectCommand(e))
	return cmd
}

func newImportCommand(e *env) *cobra.Command {
	var message string
	var changes []string
	cmd := &cobra.Command{
		Use:   "import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
		Short: "Import the contents from a tarball to create a filesystem image",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 2 {
				return fmt.Errorf("%s: '%s' requires at most 2 arguments", cmd.Root().Name(), cmd.CommandPath())
			}
			src, closeSrc, err := openImportSource(e, args[0])
			if err != nil {
				return err
			}
			defer closeSrc()
			// Like docker, send "name:tag" whole as repo; the daemon splits
			// it. Like docker's client, check it before the upload starts:
			// the daemon refuses a bad name before it reads the body, and
			// the client would see a broken pipe instead of the reason.
			repo := ""
			if len(args) == 2 {
				repo = args[1]
				if _, err := reference.Parse(repo); err != nil {
					return err
				}
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			body, err := c.ImageImport(cmd.Context(), src, repo, "", message, changes)
			if err != nil {
				return err
			}
			defer body.Close()
			return printJSONMessages(e.out, body)
		},
	}
	cmd.Flags().StringVarP(&message, "message", "m", "", "Set commit message for imported image")
	cmd.Flags().StringArrayVarP(&changes, "change", "c", nil, "Apply Dockerfile instruction to the created image")
	return cmd
}

// openImportSource opens the tarball to import: a file, or "-" for stdin.
func openImportSource(e *env, src string) (io.Reader, func(), error) {
	if src == "-" {
		return e.in, func() {}, nil
	}
	if strings.Contains(src, "://") {
		return nil, nil, fmt.Errorf("importing from URL %q is not supported by berth; download it and import the file", src)
	}
	f, err := os.Open(src)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

// jsonMessage is the part of docker's progress message stream berth's
// daemon sends.
type jsonMessage struct {
	Status      string `json:"status"`
	ID          string `json:"id"`
	Error       string `json:"error"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
}

// printJSONMessages prints each status line of a message stream and fails
// on the first error message.
func printJSONMessages(w io.Writer, r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var m jsonMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read import progress: %w", err)
		}
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			return errors.New(m.ErrorDetail.Message)
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
		switch {
		case m.ID != "" && m.Status != "":
			fmt.Fprintf(w, "%s: %s\n", m.ID, m.Status)
		case m.Status != "":
			fmt.Fprintln(w, m.Status)
		}
	}
}

const imagesTable = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}"

var imagesHeader = headerRow{
	"Repository":   "REPOSITORY",
	"Tag":          "TAG",
	"ID":           "IMAGE ID",
	"CreatedSince": "CREATED",
	"CreatedAt":    "CREATED AT",
	"Size":         "SIZE",
	"Containers":   "CONTAINERS",
	"Digest":       "DIGEST",
	"SharedSize":   "SHARED SIZE",
	"UniqueSize":   "UNIQUE SIZE",
	"VirtualSize":  "SIZE",
}

// imageRow is one repo:tag of an image, as docker images lists them.
type imageRow struct {
	img       image.Summary
	repo, tag string
	trunc     bool
	now       time.Time
}

func (r *imageRow) MarshalJSON() ([]byte, error) { return marshalMethods(r) }

func (r *imageRow) ID() string {
	if r.trunc {
		return container.TruncateID(r.img.ID)
	}
	return r.img.ID
}
func (r *imageRow) Repository() string { return r.repo }
func (r *imageRow) Tag() string        { return r.tag }
func (r *imageRow) Digest() string     { return "<none>" }

func (r *imageRow) CreatedSince() string {
	if r.img.Created <= 0 {
		return ""
	}
	return units.HumanDuration(r.now.UTC().Sub(time.Unix(r.img.Created, 0))) + " ago"
}

func (r *imageRow) CreatedAt() string { return time.Unix(r.img.Created, 0).String() }
func (r *imageRow) Size() string      { return units.HumanSizeWithPrecision(float64(r.img.Size), 3) }

// VirtualSize is docker's deprecated alias of Size, kept for old templates.
func (r *imageRow) VirtualSize() string { return units.HumanSize(float64(r.img.Size)) }

func (r *imageRow) SharedSize() string {
	if r.img.SharedSize == -1 {
		return "N/A"
	}
	return units.HumanSize(float64(r.img.SharedSize))
}

func (r *imageRow) UniqueSize() string {
	if r.img.Size == -1 || r.img.SharedSize == -1 {
		return "N/A"
	}
	return units.HumanSize(float64(r.img.Size - r.img.SharedSize))
}

func (r *imageRow) Containers() string {
	if r.img.Containers == -1 {
		return "N/A"
	}
	return fmt.Sprint(r.img.Containers)
}

// imageRows expands each image into one row per repo:tag; an untagged
// image is one <none>:<none> row.
func imageRows(list []image.Summary, trunc bool, now time.Time) []any {
	var rows []any
	for _, img := range list {
		tags := img.RepoTags
		if len(tags) == 0 {
			tags = []string{"<none>:<none>"}
		}
		for _, rt := range tags {
			repo, tag := reference.SplitTag(rt)
			if tag == "" {
				tag = "<none>"
			}
			rows = append(rows, &imageRow{img: img, repo: repo, tag: tag, trunc: trunc, now: now})
		}
	}
	return rows
}

func newImagesCommand(e *env) *cobra.Command {
	var (
		all, quiet, noTrunc bool
		format              string
		filters             filterFlag
	)
	cmd := &cobra.Command{
		Use:   "images [OPTIONS] [REPOSITORY[:TAG]]",
		Short: "List images",
		Args:  requiresRangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			f := filters.value()
			if len(args) == 1 {
				f["reference"] = append(f["reference"], args[0])
			}
			list, err := c.ImageList(cmd.Context(), all, f)
			if err != nil {
				return err
			}
			rows := imageRows(list, !noTrunc, e.now())
			return writeList(e.out, listFormat(format, quiet, imagesTable, "{{.ID}}"), imagesHeader, rows)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "Show all images (default hides intermediate images)")
	fl.BoolVarP(&quiet, "quiet", "q", false, "Only show image IDs")
	fl.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	fl.StringVar(&format, "format", "", "Format output using a custom template")
	fl.VarP(&filters, "filter", "f", "Filter output based on conditions provided")
	return cmd
}

func newImageInspectCommand(e *env) *cobra.Command {
	return newKindInspectCommand(e, "inspect [OPTIONS] IMAGE [IMAGE...]",
		"Display detailed information on one or more images",
		func(ctx context.Context, c *client.Client, ref string) (any, []byte, error) {
			v, raw, err := c.ImageInspect(ctx, ref)
			return v, raw, err
		})
}

func newRmiCommand(e *env) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rmi [OPTIONS] IMAGE [IMAGE...]",
		Short: "Remove one or more images",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			var errs []error
			fatal := false
			for _, ref := range args {
				dels, err := c.ImageRemove(cmd.Context(), ref, force)
				if err != nil {
					errs = append(errs, err)
					fatal = fatal || !errdefs.Is(err, errdefs.KindNotFound)
					continue
				}
				for _, d := range dels {
					if d.Deleted != "" {
						fmt.Fprintln(e.out, "Deleted:", d.Deleted)
					} else {
						fmt.Fprintln(e.out, "Untagged:", d.Untagged)
					}
				}
			}
			if len(errs) > 0 && force && !fatal {
				// As docker rmi -f: images that are not there are said,
				// but the command succeeds.
				fmt.Fprintln(e.err, errors.Join(errs...))
				return nil
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force removal of the image")
	return cmd
}
