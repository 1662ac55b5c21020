package build

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
)

// builtinArgs may be given with --build-arg without an ARG declaring them
// (moby's builtinAllowedBuildArgs): proxies, which RUN sees but history
// does not record unless an ARG names them.
var builtinArgs = map[string]bool{
	"HTTP_PROXY": true, "http_proxy": true, "HTTPS_PROXY": true, "https_proxy": true,
	"FTP_PROXY": true, "ftp_proxy": true, "NO_PROXY": true, "no_proxy": true,
	"ALL_PROXY": true, "all_proxy": true,
}

// buildArgs are a build's ARGs, as moby's BuildArgs: those a stage
// declared (allowed), those declared before the first FROM (meta, which
// FROM lines and a stage's value-less ARG of the same name see), those
// ever declared (referenced), and the --build-arg values (options, which
// win over defaults; nil: given without a value, and unset).
type buildArgs struct {
	allowed, meta map[string]*string
	referenced    map[string]bool
	options       map[string]*string
}

func newBuildArgs(options map[string]*string) *buildArgs {
	return &buildArgs{allowed: map[string]*string{}, meta: map[string]*string{}, referenced: map[string]bool{}, options: options}
}

// forStage is a stage's copy: the meta ARGs and what was referenced,
// none allowed yet (a stage declares its own).
func (b *buildArgs) forStage() *buildArgs {
	out := newBuildArgs(b.options)
	maps.Copy(out.meta, b.meta)
	maps.Copy(out.referenced, b.referenced)
	return out
}

func (b *buildArgs) add(key string, value *string) {
	b.allowed[key] = value
	b.referenced[key] = true
}

// value is key's value from mapping: the --build-arg value if given, the
// default, or for a declaration without one the meta ARG's.
func (b *buildArgs) value(key string, mapping map[string]*string) (string, bool) {
	def, declared := mapping[key]
	if v, ok := b.options[key]; ok && v != nil {
		return *v, true
	}
	if def == nil {
		if v, ok := b.meta[key]; ok && v != nil {
			return *v, true
		}
		return "", false
	}
	return *def, declared
}

func (b *buildArgs) all(mapping map[string]*string) map[string]string {
	out := map[string]string{}
	for _, key := range slices.Concat(slices.Collect(maps.Keys(mapping)), slices.Collect(maps.Keys(builtinArgs))) {
		if v, ok := b.value(key, mapping); ok {
			out[key] = v
		}
	}
	return out
}

// allAllowed are the values of the stage's ARGs and of given built-in
// ones.
func (b *buildArgs) allAllowed() map[string]string { return b.all(b.allowed) }

// allMeta are the values FROM lines see.
func (b *buildArgs) allMeta() map[string]string { return b.all(b.meta) }

// filterAllowed are "KEY=value" entries for the allowed ARGs that env
// (the config's ENV, which wins) does not set, sorted.
func (b *buildArgs) filterAllowed(env []string) []string {
	set := map[string]bool{}
	for _, e := range env {
		k, _, _ := strings.Cut(e, "=")
		set[k] = true
	}
	var out []string
	for k, v := range b.allAllowed() {
		if !set[k] {
			out = append(out, k+"="+v)
		}
	}
	sort.Strings(out)
	return out
}

// referencedOrNotBuiltin says whether key belongs in a RUN's history: a
// declared ARG, or anything but a built-in proxy one.
func (b *buildArgs) referencedOrNotBuiltin(key string) bool {
	_, allowed := b.allowed[key]
	return allowed || !builtinArgs[key]
}

// warnUnused writes moby's warning for --build-arg values no ARG
// declared.
func (b *buildArgs) warnUnused(w io.Writer) {
	var left []string
	for k := range b.options {
		if !b.referenced[k] && !builtinArgs[k] {
			left = append(left, k)
		}
	}
	if len(left) > 0 {
		sort.Strings(left)
		fmt.Fprintf(w, "[Warning] One or more build-args %v were not consumed\n", left)
	}
}
