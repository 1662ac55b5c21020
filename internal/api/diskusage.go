package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/build"
	ctypes "github.com/docker/docker/api/types/container"
	imagetypes "github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/volume"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/runtime/image"
)

// layerSharing is what docker system df counts of imgs as moby does
// (layer by layer): each image's SharedSize, the bytes of its layers
// another image has too (a build's images share their base's and each
// other's, their trees hard links), and the bytes of every layer once.
// An image recorded before berth kept its layers' sizes counts whole,
// shared with none.
func layerSharing(imgs []*image.Image) (map[*image.Image]int64, int64) {
	counted := func(img *image.Image) bool { return len(img.Layers) > 0 && len(img.LayerSizes) == len(img.Layers) }
	// A layer is itself and every layer under it (moby keys it by its
	// chain ID): the same diff on two bases is two layers.
	chain := func(img *image.Image, i int) string { return strings.Join(img.Layers[:i+1], "\n") }
	users := map[string]int{}
	for _, img := range imgs {
		if counted(img) {
			for i := range img.Layers {
				users[chain(img, i)]++
			}
		}
	}
	shared, seen := map[*image.Image]int64{}, map[string]bool{}
	var total int64
	for _, img := range imgs {
		if !counted(img) {
			total += img.Size
			continue
		}
		for i := range img.Layers {
			c := chain(img, i)
			if users[c] > 1 {
				shared[img] += img.LayerSizes[i]
			}
			if !seen[c] {
				seen[c] = true
				total += img.LayerSizes[i]
			}
		}
		// A layer that deletes leaves a tree smaller than its layers.
		shared[img] = min(shared[img], img.Size)
	}
	return shared, total
}

// systemDF is docker system df, as moby's getDiskUsage: images with how
// many containers use each, containers with their sizes (ps -s's), the
// volumes with their sizes and users, and no build cache (berth has no
// BuildKit: a legacy build's cache is its intermediate images). type= picks the kinds
// (API 1.42 and later), every kind when absent.
func (s *Server) systemDF(w http.ResponseWriter, r *http.Request) error {
	want := map[types.DiskUsageObject]bool{types.ContainerObject: true, types.ImageObject: true, types.VolumeObject: true, types.BuildCacheObject: true}
	if typs, ok := r.URL.Query()["type"]; ok && !lessThan(apiVersion(r.Context()), "1.42") {
		clear(want)
		for _, t := range typs {
			switch o := types.DiskUsageObject(t); o {
			case types.ContainerObject, types.ImageObject, types.VolumeObject, types.BuildCacheObject:
				want[o] = true
			default:
				return errdefs.Invalid("%s", fmt.Sprintf("unknown object type: %s", t))
			}
		}
	}
	var du types.DiskUsage
	uses := map[string]int64{}
	if want[types.ContainerObject] || want[types.ImageObject] {
		ctrs, err := s.backend.Containers(r.Context())
		if err != nil {
			return err
		}
		if want[types.ContainerObject] {
			du.Containers = []*ctypes.Summary{}
		}
		for _, c := range ctrs {
			uses[c.Config.ImageID]++
			if !want[types.ContainerObject] {
				continue
			}
			atts := s.backend.ListedAttachments(r.Context(), c)
			sum := containerSummary(c, atts, s.backend.ContainerLinks(r.Context(), c.ID), s.now())
			if gone, err := s.addSize(r.Context(), &sum); gone {
				continue
			} else if err != nil {
				return err
			}
			du.Containers = append(du.Containers, &sum)
		}
	}
	if want[types.ImageObject] {
		imgs, err := s.backend.Images(r.Context())
		if err != nil {
			return err
		}
		du.Images = []*imagetypes.Summary{}
		var shared map[*image.Image]int64
		shared, du.LayersSize = layerSharing(imgs)
		for _, img := range imgs {
			sum := imageSummary(img)
			sum.Containers, sum.SharedSize = uses[img.ID], shared[img]
			du.Images = append(du.Images, &sum)
		}
	}
	if want[types.VolumeObject] {
		du.Volumes = []*volume.Volume{}
		vs, err := s.backend.Volumes(r.Context(), true)
		if err != nil {
			return err
		}
		for _, v := range vs {
			du.Volumes = append(du.Volumes, volumeView(v))
		}
	}
	if want[types.BuildCacheObject] {
		du.BuildCache = []*build.CacheRecord{}
	}
	return writeJSON(w, http.StatusOK, du)
}
