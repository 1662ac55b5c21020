package container

import "testing"

func TestCheckLogConfig(t *testing.T) {
	tests := []struct {
		lc        LogConfig
		err       string
		size      int64
		files     int
		whatAbout string
	}{
		{lc: LogConfig{}, files: 1, whatAbout: "the default"},
		{lc: LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m", "max-file": "3"}}, size: 10_000_000, files: 3, whatAbout: "Compose's usual block"},
		{lc: LogConfig{Config: map[string]string{"max-size": "1k"}}, size: 1000, files: 1, whatAbout: "size alone (decimal units, as units.FromHumanSize)"},
		{lc: LogConfig{Config: map[string]string{"max-file": "4"}}, files: 4, whatAbout: "files alone: no rotation, as json-file"},
		{lc: LogConfig{Config: map[string]string{"compress": "false"}}, files: 1, whatAbout: "compress off is what berth does"},
		{lc: LogConfig{Type: "local"}, err: `log driver "local" (--log-driver) is not supported by berth: only json-file, with max-size and max-file`},
		{lc: LogConfig{Type: "none"}, err: `log driver "none" (--log-driver) is not supported by berth: only json-file, with max-size and max-file`},
		{lc: LogConfig{Config: map[string]string{"max-size": "0"}}, err: "max-size must be a positive number"},
		{lc: LogConfig{Config: map[string]string{"max-size": "lots"}}, err: "invalid size: 'lots'"},
		{lc: LogConfig{Config: map[string]string{"max-file": "0"}}, err: "max-file cannot be less than 1"},
		{lc: LogConfig{Config: map[string]string{"max-file": "two"}}, err: `strconv.Atoi: parsing "two": invalid syntax`},
		{lc: LogConfig{Config: map[string]string{"compress": "true"}}, err: "log opt 'compress' is not supported by berth: rotated logs are kept uncompressed"},
		{lc: LogConfig{Config: map[string]string{"tag": "{{.Name}}"}}, err: "log opt 'tag' is not supported by berth: its log files carry no attributes"},
		{lc: LogConfig{Config: map[string]string{"mode": "non-blocking", "max-buffer-size": "4m"}}, files: 1, whatAbout: "moby's options of every driver"},
		{lc: LogConfig{Config: map[string]string{"mode": "blocking"}}, files: 1, whatAbout: "blocking mode"},
		{lc: LogConfig{Config: map[string]string{"mode": "lossy"}}, err: "logger: logging mode not supported: lossy"},
		{lc: LogConfig{Config: map[string]string{"max-buffer-size": "1m"}}, err: "logger: max-buffer-size option is only supported with 'mode=non-blocking'"},
		{lc: LogConfig{Config: map[string]string{"max-age": "1d"}}, err: "unknown log opt 'max-age' for json-file log driver"},
	}
	for _, tt := range tests {
		err := CheckLogConfig(tt.lc)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("CheckLogConfig(%+v) = %v, want %q", tt.lc, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: CheckLogConfig(%+v) = %v", tt.whatAbout, tt.lc, err)
			continue
		}
		size, files, _ := tt.lc.Limits()
		if size != tt.size || files != tt.files {
			t.Errorf("%s: Limits() = %d, %d, want %d, %d", tt.whatAbout, size, files, tt.size, tt.files)
		}
	}
}
