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
		{lc: LogConfig{Config: map[string]string{"compress": "false"}}, files: 1, whatAbout: "compress off"},
		{lc: LogConfig{Type: "syslog"}, err: `log driver "syslog" (--log-driver) is not supported by berth: json-file, local and none are`},
		// local: moby's local driver's options, defaults and errors.
		{lc: LogConfig{Type: "local"}, size: 20 << 20, files: 5, whatAbout: "local's defaults"},
		{lc: LogConfig{Type: "local", Config: map[string]string{"max-size": "10m", "max-file": "3", "compress": "true"}}, size: 10_000_000, files: 3, whatAbout: "local with options"},
		{lc: LogConfig{Type: "local", Config: map[string]string{"max-size": "0", "max-file": "1", "compress": "false"}}, size: 1, files: 1, whatAbout: "local: max-size 0 rotates at every check (moby: before every write)"},
		{lc: LogConfig{Type: "local", Config: map[string]string{"max-file": "1"}}, err: "compression cannot be enabled when max file count is 1"},
		{lc: LogConfig{Type: "local", Config: map[string]string{"max-file": "-1"}}, err: "max file count cannot be less than 0"},
		{lc: LogConfig{Type: "local", Config: map[string]string{"max-size": "lots"}}, err: "invalid value for max-size: lots: invalid size: 'lots'"},
		{lc: LogConfig{Type: "local", Config: map[string]string{"compress": "maybe"}}, err: `error reading compress log option: strconv.ParseBool: parsing "maybe": invalid syntax`},
		{lc: LogConfig{Type: "local", Config: map[string]string{"tag": "x"}}, err: "unknown log opt 'tag' for log driver local"},
		{lc: LogConfig{Type: "local", Config: map[string]string{"mode": "lossy"}}, err: "logger: logging mode not supported: lossy"},
		// none: no option is checked (moby's ValidateLogOpts returns at
		// once); the files stay small, for attach.
		{lc: LogConfig{Type: "none", Config: map[string]string{"max-size": "nonsense"}}, size: 1 << 20, files: 1, whatAbout: "none"},
		{lc: LogConfig{Config: map[string]string{"max-size": "0"}}, err: "max-size must be a positive number"},
		{lc: LogConfig{Config: map[string]string{"max-size": "lots"}}, err: "invalid size: 'lots'"},
		{lc: LogConfig{Config: map[string]string{"max-file": "0"}}, err: "max-file cannot be less than 1"},
		{lc: LogConfig{Config: map[string]string{"max-file": "two"}}, err: `strconv.Atoi: parsing "two": invalid syntax`},
		{lc: LogConfig{Config: map[string]string{"compress": "true"}}, err: "compress cannot be true when max-file is less than 2 or max-size is not set"},
		{lc: LogConfig{Config: map[string]string{"compress": "true", "max-size": "1m"}}, err: "compress cannot be true when max-file is less than 2 or max-size is not set"},
		{lc: LogConfig{Config: map[string]string{"compress": "true", "max-file": "3"}}, err: "compress cannot be true when max-file is less than 2 or max-size is not set"},
		{lc: LogConfig{Config: map[string]string{"compress": "yes"}}, err: `strconv.ParseBool: parsing "yes": invalid syntax`},
		{lc: LogConfig{Config: map[string]string{"compress": "true", "max-size": "10m", "max-file": "3"}}, size: 10_000_000, files: 3, whatAbout: "compressed, as the usual daemon.json"},
		{lc: LogConfig{Config: map[string]string{"labels": "a,b", "env": "X", "labels-regex": "^com\\.", "env-regex": "^GO", "tag": "{{.Name}}"}}, files: 1, whatAbout: "json-file's attributes"},
		{lc: LogConfig{Config: map[string]string{"labels-regex": "("}}, err: "log opt 'labels-regex': error parsing regexp: missing closing ): `(`"},
		{lc: LogConfig{Config: map[string]string{"env-regex": "[z-a]"}}, err: "log opt 'env-regex': error parsing regexp: invalid character class range: `z-a`"},
		{lc: LogConfig{Config: map[string]string{"tag": "{{.Name"}}, err: "log opt 'tag': template: log-tag:1: unclosed action"},
		{lc: LogConfig{Config: map[string]string{"tag": "{{nosuch .Name}}"}}, err: `log opt 'tag': template: log-tag:1: function "nosuch" not defined`},
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

func TestLogConfigCompressed(t *testing.T) {
	for _, tc := range []struct {
		lc   LogConfig
		want bool
	}{
		{LogConfig{}, false},
		{LogConfig{Config: map[string]string{"compress": "true", "max-size": "1m", "max-file": "2"}}, true},
		{LogConfig{Config: map[string]string{"compress": "false"}}, false},
		{LogConfig{Type: "local"}, true}, // local's default
		{LogConfig{Type: "local", Config: map[string]string{"compress": "false"}}, false},
		{LogConfig{Type: "local", Config: map[string]string{"max-file": "1", "compress": "false"}}, false},
		{LogConfig{Type: "none", Config: map[string]string{"compress": "true"}}, false},
	} {
		if got := tc.lc.Compressed(); got != tc.want {
			t.Errorf("%+v: Compressed() = %v, want %v", tc.lc, got, tc.want)
		}
	}
}

func TestLogConfigReadable(t *testing.T) {
	for _, tt := range []struct {
		typ, driver string
		readable    bool
	}{{"", "json-file", true}, {"json-file", "json-file", true}, {"local", "local", true}, {"none", "none", false}} {
		lc := LogConfig{Type: tt.typ}
		if lc.Readable() != tt.readable || lc.Driver() != tt.driver {
			t.Errorf("%q: Readable() = %v, Driver() = %q; want %v, %q", tt.typ, lc.Readable(), lc.Driver(), tt.readable, tt.driver)
		}
	}
}

func TestBuffering(t *testing.T) {
	for _, c := range []struct {
		cfg  map[string]string
		nb   bool
		size int64
	}{
		{nil, false, 0},
		{map[string]string{"mode": "blocking"}, false, 0},
		{map[string]string{"mode": "non-blocking"}, true, 0},
		{map[string]string{"mode": "non-blocking", "max-buffer-size": "4m"}, true, 4 << 20},
	} {
		if nb, size := (LogConfig{Config: c.cfg}).Buffering(); nb != c.nb || size != c.size {
			t.Errorf("Buffering(%v) = %v, %d; want %v, %d", c.cfg, nb, size, c.nb, c.size)
		}
	}
}
