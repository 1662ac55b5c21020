package container

import (
	"reflect"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	text := "cpu  100 5 50 1000 10 1 2 7 0 0\ncpu0 50 2 25 500 5 0 1 3 0 0\ncpu1 50 3 25 500 5 1 1 4 0 0\nintr 12345\nctxt 99\n"
	sys, online := ParseProcStat(text)
	// user..softirq: 100+5+50+1000+10+1+2 = 1168 ticks of 10 ms; steal left out, as moby does.
	if want := uint64(1168) * uint64(10*time.Millisecond); sys != want || online != 2 {
		t.Errorf("ParseProcStat = %d, %d; want %d, 2", sys, online, want)
	}
}

func TestParseNetDev(t *testing.T) {
	text := "Inter-|   Receive                                                |  Transmit\n" +
		" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n" +
		"    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n" +
		"  eth0:    1500      12    1    2    0     0          0         0      900       8    3    4    0     0       0          0\n"
	want := map[string]NetStats{"eth0": {RxBytes: 1500, RxPackets: 12, RxErrors: 1, RxDropped: 2, TxBytes: 900, TxPackets: 8, TxErrors: 3, TxDropped: 4}}
	if got := ParseNetDev(text); !reflect.DeepEqual(got, want) {
		t.Errorf("ParseNetDev = %+v, want %+v", got, want)
	}
}

func TestParseBlkio(t *testing.T) {
	v1 := "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 12288\n8:0 Total 12288\nTotal 12288\n"
	if got := ParseBlkioV1(v1); len(got) != 5 || got[0] != (BlkioEntry{8, 0, "Read", 4096}) || got[1] != (BlkioEntry{8, 0, "Write", 8192}) {
		t.Errorf("ParseBlkioV1 = %+v", got)
	}
	bytes, ops := ParseIOStatV2("253:0 rbytes=4096 wbytes=512 rios=1 wios=2 dbytes=0 dios=0\n")
	if want := []BlkioEntry{{253, 0, "read", 4096}, {253, 0, "write", 512}}; !reflect.DeepEqual(bytes, want) {
		t.Errorf("io.stat bytes = %+v, want %+v", bytes, want)
	}
	if want := []BlkioEntry{{253, 0, "read", 1}, {253, 0, "write", 2}}; !reflect.DeepEqual(ops, want) {
		t.Errorf("io.stat requests = %+v, want %+v", ops, want)
	}
}

func TestParseCgroupFiles(t *testing.T) {
	v2, v1 := ParseProcCgroup("12:pids:/berth/c1\n4:cpu,cpuacct:/berth/c1\n1:name=systemd:/berth/c1\n0::/berth/c1\n")
	if v2 != "/berth/c1" || v1["cpu"] != "/berth/c1" || v1["cpuacct"] != "/berth/c1" || v1["pids"] != "/berth/c1" || v1["systemd"] != "/berth/c1" {
		t.Errorf("ParseProcCgroup = %q, %v", v2, v1)
	}
	if kv := ParseKV("usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nbad line x\n"); kv["usage_usec"] != 1500 || kv["system_usec"] != 500 || len(kv) != 3 {
		t.Errorf("ParseKV = %v", kv)
	}
	if ParseUintOrMax("max\n") != 0 || ParseUintOrMax("42\n") != 42 {
		t.Errorf("ParseUintOrMax")
	}
}
