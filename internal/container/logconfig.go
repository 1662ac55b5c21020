package container

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/docker/go-units"
)

// LogConfig is HostConfig.LogConfig: berth writes json-file's files (see
// the runtime's logs) and applies its max-size and max-file.
type LogConfig struct {
	Type   string            `json:"type,omitempty"` // "" is json-file, the one berth has
	Config map[string]string `json:"config,omitempty"`
}

// LogDriver is the one log driver berth has.
const LogDriver = "json-file"

// CheckLogConfig applies Docker's rules for json-file's options (its
// ValidateLogOpt, and what its New refuses at start, checked here at
// create), and refuses what berth would otherwise ignore: another driver,
// compression, and the options that only add attributes to the file's
// records (labels, env, tag), which berth's files do not carry.
func CheckLogConfig(lc LogConfig) error {
	if lc.Type != "" && lc.Type != LogDriver {
		return fmt.Errorf("log driver %q (--log-driver) is not supported by berth: only json-file, with max-size and max-file", lc.Type)
	}
	// moby's options of every driver (logger.ValidateLogOpts). berth never
	// blocks a container on its log (the container writes the file
	// itself), so either mode is what it does, and there is no buffer.
	switch mode := lc.Config["mode"]; mode {
	case "", "blocking", "non-blocking":
	default:
		return fmt.Errorf("logger: logging mode not supported: %s", mode)
	}
	if s, ok := lc.Config["max-buffer-size"]; ok {
		if lc.Config["mode"] != "non-blocking" {
			return errors.New("logger: max-buffer-size option is only supported with 'mode=non-blocking'")
		}
		if _, err := units.RAMInBytes(s); err != nil {
			return fmt.Errorf("error parsing option max-buffer-size: %w", err)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(lc.Config)) {
		switch v := lc.Config[k]; k {
		case "max-size", "max-file", "mode", "max-buffer-size":
		case "compress":
			if on, err := strconv.ParseBool(v); err != nil {
				return err
			} else if on {
				return errors.New("log opt 'compress' is not supported by berth: rotated logs are kept uncompressed")
			}
		case "labels", "labels-regex", "env", "env-regex", "tag":
			return fmt.Errorf("log opt '%s' is not supported by berth: its log files carry no attributes", k)
		default:
			return fmt.Errorf("unknown log opt '%s' for json-file log driver", k)
		}
	}
	_, _, err := lc.Limits()
	return err
}

// Limits are max-size in bytes (0: none) and max-file (1 when not set),
// with json-file's errors for bad values.
func (lc LogConfig) Limits() (maxSize int64, maxFiles int, err error) {
	maxFiles = 1
	if s, ok := lc.Config["max-size"]; ok {
		if maxSize, err = units.FromHumanSize(s); err != nil {
			return 0, 0, err
		}
		if maxSize <= 0 {
			return 0, 0, errors.New("max-size must be a positive number")
		}
	}
	if s, ok := lc.Config["max-file"]; ok {
		if maxFiles, err = strconv.Atoi(s); err != nil {
			return 0, 0, err
		}
		if maxFiles < 1 {
			return 0, 0, errors.New("max-file cannot be less than 1")
		}
	}
	return maxSize, maxFiles, nil
}
