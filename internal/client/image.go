package client

import (
	"context"
	"io"
	"net/http"
	"net/url"

	"github.com/docker/docker/api/types/image"
)

// ImageImport streams a root filesystem tar as the raw body of
// POST /images/create?fromSrc=- and returns the daemon's JSON message
// stream; the caller reads and closes it.
func (c *Client) ImageImport(ctx context.Context, src io.Reader, repo, tag, message string, changes []string) (io.ReadCloser, error) {
	q := url.Values{"fromSrc": {"-"}}
	if repo != "" {
		q.Set("repo", repo)
	}
	if tag != "" {
		q.Set("tag", tag)
	}
	if message != "" {
		q.Set("message", message)
	}
	for _, c := range changes {
		q.Add("changes", c)
	}
	resp, err := c.do(ctx, request{
		method: http.MethodPost,
		path:   "/images/create",
		query:  q,
		body:   src,
		header: http.Header{"Content-Type": {"application/x-tar"}},
	})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ImageList returns GET /images/json.
func (c *Client) ImageList(ctx context.Context, all bool, f Filters) ([]image.Summary, error) {
	q := filterQuery(f)
	boolQuery(q, "all", all)
	var list []image.Summary
	err := c.getJSON(ctx, "/images/json", q, &list)
	return list, err
}

// ImageInspect returns GET /images/{ref}/json decoded and raw.
func (c *Client) ImageInspect(ctx context.Context, ref string) (image.InspectResponse, []byte, error) {
	var img image.InspectResponse
	raw, err := c.getJSONRaw(ctx, "/images/"+ref+"/json", nil, &img)
	return img, raw, err
}

// ImageRemove untags and deletes an image.
func (c *Client) ImageRemove(ctx context.Context, ref string, force bool) ([]image.DeleteResponse, error) {
	q := url.Values{}
	boolQuery(q, "force", force)
	var resp []image.DeleteResponse
	err := c.sendJSON(ctx, http.MethodDelete, "/images/"+ref, q, nil, &resp)
	return resp, err
}
