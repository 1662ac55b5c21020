package container

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"

	"github.com/docker/go-units"
)

// LogConfig is HostConfig.LogConfig. Whatever the driver, a container's
// output goes to its log file in json-file's format (the runtime's
// jsonlog.go), which attach follows too; the driver decides how big it
// grows and whether docker logs may read it.
type LogConfig struct {
	Type   string            `json:"type,omitempty"` // "" is json-file, the default
	Config map[string]string `json:"config,omitempty"`
}

// The log drivers berth has.
const (
	// LogDriver is json-file, Docker's default: max-size and max-file as
	// json-file takes them.
	LogDriver = "json-file"
	// LogDriverLocal is Docker's local driver: its options and defaults
	// (20 MB, 5 files, compressed). berth keeps its files in json-file's
	// format (gzipped once rotated), where Docker keeps them in one of
	// its own, which only docker logs reads.
	LogDriverLocal = "local"
	// LogDriverNone keeps nothing for docker logs, which refuses, as in
	// Docker; attach still sees the output, through a file started
	// afresh once it passes noneMaxSize (an attach that lags behind by
	// that much loses what was dropped).
	LogDriverNone = "none"
)

// noneMaxSize bounds each stream's file for the none driver.
const noneMaxSize = 1 << 20

// Driver is the log driver's name, json-file for "".
func (lc LogConfig) Driver() string {
	if lc.Type == "" {
		return LogDriver
	}
	return lc.Type
}

// Readable says whether docker logs may read the container's output.
func (lc LogConfig) Readable() bool { return lc.Type != LogDriverNone }

// CheckLogConfig applies Docker's rules for the driver's options (moby's
// ValidateLogOpts and the driver's validator, and what the driver's New
// refuses at start — a regular expression or a tag template that does
// not parse — checked here at create), and refuses what berth would
// otherwise ignore: another driver.
func CheckLogConfig(lc LogConfig) error {
	switch lc.Type {
	case "", LogDriver, LogDriverLocal:
	case LogDriverNone:
		return nil // moby checks no option of none
	default:
		return fmt.Errorf("log driver %q (--log-driver) is not supported by berth: json-file, local and none are", lc.Type)
	}
	// moby's options of every driver (logger.ValidateLogOpts): the
	// mode, and non-blocking's buffer (Buffering).
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
		v := lc.Config[k]
		switch {
		case k == "mode" || k == "max-buffer-size":
		case lc.Type == LogDriverLocal:
			if k != "max-size" && k != "max-file" && k != "compress" {
				return fmt.Errorf("unknown log opt '%s' for log driver local", k) // local.ValidateLogOpt
			}
		case k == "max-size" || k == "max-file":
		case k == "compress":
			if _, err := strconv.ParseBool(v); err != nil {
				return err
			}
		case k == logAttrLabels || k == logAttrEnv:
		case k == logAttrLabelsRegex || k == logAttrEnvRegex:
			if _, err := regexp.Compile(v); err != nil {
				return fmt.Errorf("log opt '%s': %w", k, err)
			}
		case k == logAttrTag:
			if _, err := parseLogTag(v); err != nil {
				return fmt.Errorf("log opt 'tag': %w", err)
			}
		default:
			return fmt.Errorf("unknown log opt '%s' for json-file log driver", k)
		}
	}
	_, _, err := lc.Limits()
	return err
}

// Buffering is mode=non-blocking (entries queue for the writer and are
// dropped past the buffer, so the container never waits for its log)
// and max-buffer-size in bytes (0: the default, 1 MB).
func (lc LogConfig) Buffering() (nonBlocking bool, maxBuffer int64) {
	if lc.Config["mode"] != "non-blocking" {
		return false, 0
	}
	if s, ok := lc.Config["max-buffer-size"]; ok {
		maxBuffer, _ = units.RAMInBytes(s) // checked at create
	}
	return true, maxBuffer
}

// Limits are max-size in bytes (0: none) and how many files a stream
// keeps, the live one included (max-file), with the driver's defaults
// and its errors for bad values.
func (lc LogConfig) Limits() (maxSize int64, maxFiles int, err error) {
	switch lc.Type {
	case LogDriverNone:
		return noneMaxSize, 1, nil
	case LogDriverLocal:
		return lc.localLimits()
	}
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
	if s, ok := lc.Config["compress"]; ok {
		compress, err := strconv.ParseBool(s)
		if err != nil {
			return 0, 0, err
		}
		if compress && (maxFiles == 1 || maxSize == 0) {
			return 0, 0, errors.New("compress cannot be true when max-file is less than 2 or max-size is not set")
		}
	}
	return maxSize, maxFiles, nil
}

// Compressed says whether the rotated files are kept gzipped: json-file's
// compress option, the local driver's by default (moby's local keeps
// them compressed in its own format; berth's are json-file's, gzipped).
func (lc LogConfig) Compressed() bool {
	switch lc.Type {
	case LogDriverNone:
		return false
	case LogDriverLocal:
		_, files, err := lc.localLimits()
		if err != nil || files <= 1 {
			return false
		}
		on, err := strconv.ParseBool(lc.Config["compress"])
		return err != nil || on // unset (or checked at create): on
	}
	on, _ := strconv.ParseBool(lc.Config["compress"])
	return on
}

// localLimits are the local driver's, as its New and validateConfig take
// them: 20 MB and 5 files unless given, and no compression (its default)
// with a single file.
func (lc LogConfig) localLimits() (maxSize int64, maxFiles int, err error) {
	maxSize, maxFiles, compress := 20*1024*1024, 5, true
	if s, ok := lc.Config["max-size"]; ok {
		if maxSize, err = units.FromHumanSize(s); err != nil {
			return 0, 0, fmt.Errorf("invalid value for max-size: %s: %w", s, err)
		}
	}
	if s, ok := lc.Config["max-file"]; ok {
		if maxFiles, err = strconv.Atoi(s); err != nil {
			return 0, 0, fmt.Errorf("invalid value for max-file: %s: %w", s, err)
		}
	}
	if s, ok := lc.Config["compress"]; ok {
		if compress, err = strconv.ParseBool(s); err != nil {
			return 0, 0, fmt.Errorf("error reading compress log option: %w", err)
		}
	}
	switch {
	case maxSize < 0:
		return 0, 0, errors.New("max size should be a positive number")
	case maxFiles < 0:
		return 0, 0, errors.New("max file count cannot be less than 0")
	case compress && maxFiles <= 1:
		return 0, 0, errors.New("compression cannot be enabled when max file count is 1")
	}
	if maxSize == 0 {
		// moby's capacity 0: a rotation before every write, so each file
		// holds about one message; berth cuts as soon as there is a byte.
		maxSize = 1
	}
	return maxSize, max(maxFiles, 1), nil
}
