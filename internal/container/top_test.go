package container

import (
	"reflect"
	"testing"
)

func TestParsePS(t *testing.T) {
	out := "UID          PID    PPID  C STIME TTY          TIME CMD\n" +
		"root           1       0  0 10:00 ?        00:00:01 /sbin/init splash\n" +
		"root         700       1  0 10:01 ?        00:00:00 sleep 600\n" +
		"root         701     700  0 10:01 ?        00:00:00 sh -c echo a  b\n" +
		"root           -       -  0 10:01 ?        00:00:00 -\n" +
		"root         702       1  0 10:01 ?        00:00:00 other\n" +
		"root           -       -  0 10:01 ?        00:00:00 -\n"
	got, err := ParsePS(out, []int{700, 701})
	if err != nil {
		t.Fatal(err)
	}
	want := Top{
		Titles: []string{"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"},
		Processes: [][]string{
			{"root", "700", "1", "0", "10:01", "?", "00:00:00", "sleep 600"},
			{"root", "701", "700", "0", "10:01", "?", "00:00:00", "sh -c echo a b"},
			{"root", "-", "-", "0", "10:01", "?", "00:00:00", "-"},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParsePS:\n got %q\nwant %q", got, want)
	}
	if _, err := ParsePS("USER COMMAND\nroot sh\n", []int{1}); err == nil || err.Error() != "Couldn't find PID field in ps output" {
		t.Errorf("no PID column: %v", err)
	}
	if _, err := ParsePS("PID CMD\nx sh\n", []int{1}); err == nil {
		t.Errorf("a PID that is not a number was taken")
	}
	if got, err := ParsePS("PID CMD\n9 sh\n", nil); err != nil || len(got.Processes) != 0 || got.Processes == nil {
		t.Errorf("no PIDs: %+v, %v; want no rows (an empty list)", got, err)
	}
}

func TestCheckPSArgs(t *testing.T) {
	for args, ok := range map[string]bool{"-ef": true, "aux": true, "-o pid,comm": true, "-o pid=PID,comm": true, "-o user=PID": false, "-o ppid=PIDX": false} {
		err := CheckPSArgs(args)
		if (err == nil) != ok {
			t.Errorf("CheckPSArgs(%q) = %v, want ok=%v", args, err, ok)
		}
	}
	if err := CheckPSArgs("-o user=PID"); err == nil || err.Error() != `specifying "user=PID" is not allowed` {
		t.Errorf("wording: %v", err)
	}
	if got := PSPidsArg([]int{3, 10, 200}); got != "-q3,10,200" {
		t.Errorf("PSPidsArg = %q", got)
	}
}
