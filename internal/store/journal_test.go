package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// crash drops s the way a killed daemon does: no checkpoint, no Close; the
// files stay as the last write left them.
func crash(t *testing.T, s *Bolt) {
	t.Helper()
	s.wmu.Lock()
	s.closed = true
	s.wmu.Unlock()
	s.j.close()
	if err := s.db.Close(); err != nil {
		t.Fatal(err)
	}
}

func openBolt(t *testing.T, path string) *Bolt {
	t.Helper()
	s, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func record1(t *testing.T, s *Bolt, key string, count int) Durable {
	t.Helper()
	d, err := s.Record(func(tx Tx) error { return tx.Put(BucketEndpoints, key, record{Name: key, Count: count}) })
	if err != nil {
		t.Fatalf("record %s: %v", key, err)
	}
	return d
}

// A Record is visible at once, waits for the disk only in Wait, and
// survives a crash of the process that wrote it (replayed at Open).
func TestRecordSurvivesCrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "berth.db")
	s := openBolt(t, path)
	put(t, s, BucketEndpoints, "a", record{Name: "a", Count: 1})
	d := record1(t, s, "b", 2)
	if got, err := get(s, BucketEndpoints, "b"); err != nil || got.Count != 2 {
		t.Fatalf("View right after Record: %+v, %v", got, err)
	}
	if err := d.Wait(); err != nil {
		t.Fatal(err)
	}
	record1(t, s, "c", 3) // never waited for: still kept across a crash
	if err := s.Update(func(tx Tx) error { return tx.Delete(BucketEndpoints, "a") }); err != nil {
		t.Fatal(err)
	}
	crash(t, s)
	if fi, err := os.Stat(path + ".journal"); err != nil || fi.Size() == 0 {
		t.Fatalf("journal after the writes: %v, %v; want records in it", fi, err)
	}

	s = openBolt(t, path)
	if got := keys(t, s, BucketEndpoints); !slices.Equal(got, []string{"b", "c"}) {
		t.Fatalf("after crash and reopen: keys %q, want [b c]", got)
	}
	if fi, err := os.Stat(path + ".journal"); err != nil || fi.Size() != 0 {
		t.Fatalf("journal after replay: %v, %v; want it folded into bbolt and empty", fi, err)
	}
}

// A crash in the middle of an append leaves a torn record at the end: the
// records before it are kept, the torn one is dropped, and the store works.
func TestRecordTornTail(t *testing.T) {
	for _, tear := range []struct {
		name string
		mod  func([]byte) []byte
	}{
		{"short", func(b []byte) []byte { return b[:len(b)-5] }},
		{"bad checksum", func(b []byte) []byte { b[len(b)-2] ^= 0xff; return b }},
		{"header only", func(b []byte) []byte { return b[:4] }},
	} {
		t.Run(tear.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "berth.db")
			s := openBolt(t, path)
			record1(t, s, "kept", 1)
			kept := s.j.size // records end here; zeros follow (preallocation)
			record1(t, s, "torn", 2)
			end := s.j.size
			crash(t, s)
			all, err := os.ReadFile(path + ".journal")
			if err != nil {
				t.Fatal(err)
			}
			torn := tear.mod(slices.Clone(all[kept:end]))
			// The torn record over the zeros the file already had there.
			rewritten := append(append(slices.Clone(all[:kept]), torn...), make([]byte, len(all)-int(kept)-len(torn))...)
			if err := os.WriteFile(path+".journal", rewritten, 0o600); err != nil {
				t.Fatal(err)
			}
			s = openBolt(t, path)
			if got := keys(t, s, BucketEndpoints); !slices.Equal(got, []string{"kept"}) {
				t.Fatalf("keys %q, want [kept]", got)
			}
			put(t, s, BucketEndpoints, "after", record{Name: "after"})
			if got := keys(t, s, BucketEndpoints); !slices.Equal(got, []string{"after", "kept"}) {
				t.Fatalf("keys %q after a new write, want [after kept]", got)
			}
		})
	}
}

// ForEach merges what bbolt holds with newer journaled writes, in key
// order, with deletions hidden and a transaction's own writes seen.
func TestForEachMergesJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "berth.db")
	s := openBolt(t, path)
	for _, k := range []string{"a", "c", "e", "g"} {
		put(t, s, BucketEndpoints, k, record{Name: k})
	}
	if err := s.Close(); err != nil { // checkpoint: a c e g now in bbolt
		t.Fatal(err)
	}
	s = openBolt(t, path)
	record1(t, s, "b", 0)
	record1(t, s, "h", 0)
	record1(t, s, "e", 5) // a newer value of a key bbolt has
	if err := s.Update(func(tx Tx) error { return tx.Delete(BucketEndpoints, "c") }); err != nil {
		t.Fatal(err)
	}
	if got := keys(t, s, BucketEndpoints); !slices.Equal(got, []string{"a", "b", "e", "g", "h"}) {
		t.Fatalf("keys %q", got)
	}
	if got, _ := get(s, BucketEndpoints, "e"); got.Count != 5 {
		t.Fatalf("e = %+v, want the journaled Count 5", got)
	}
	err := s.Update(func(tx Tx) error {
		if err := tx.Put(BucketEndpoints, "d", record{Name: "d"}); err != nil {
			return err
		}
		if err := tx.Delete(BucketEndpoints, "a"); err != nil {
			return err
		}
		var seen []string
		if err := tx.ForEach(BucketEndpoints, func(k string, _ []byte) error { seen = append(seen, k); return nil }); err != nil {
			return err
		}
		if !slices.Equal(seen, []string{"b", "d", "e", "g", "h"}) {
			return fmt.Errorf("inside the transaction ForEach saw %q", seen)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Past checkpointBytes the journal is folded into bbolt (in the
// background) and starts empty; nothing is lost on the way.
func TestJournalCheckpoints(t *testing.T) {
	path := filepath.Join(t.TempDir(), "berth.db")
	s := openBolt(t, path)
	big := make(map[string]string)
	for i := range 64 {
		big[fmt.Sprint(i)] = string(make([]byte, 1024))
	}
	n := 0
	for s.j.size < checkpointBytes/2 || n < 10 {
		put(t, s, BucketContainers, fmt.Sprintf("c%04d", n), record{Name: "x", Count: n, Labels: big})
		n++
	}
	for range n {
		put(t, s, BucketContainers, fmt.Sprintf("c%04d", n), record{Name: "x", Count: n, Labels: big})
		n++
	}
	waitCheckpoint(s)
	inBolt := 0
	if err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte(BucketContainers)); b != nil {
			inBolt = b.Stats().KeyN
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if inBolt == 0 || s.j.size >= checkpointBytes {
		t.Fatalf("after %d records bbolt holds %d and the journal %d bytes: no checkpoint", n, inBolt, s.j.size)
	}
	crash(t, s)
	s = openBolt(t, path)
	if got := keys(t, s, BucketContainers); len(got) != n {
		t.Fatalf("%d records after checkpoints and a crash, want %d", len(got), n)
	}
}

// Concurrent writers share fdatasyncs and every Wait succeeds.
func TestRecordConcurrentWaits(t *testing.T) {
	s := openBolt(t, filepath.Join(t.TempDir(), "berth.db"))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := s.Record(func(tx Tx) error { return tx.Put(BucketEndpoints, fmt.Sprint(i), record{Count: i}) })
			if err == nil {
				err = d.Wait()
			}
			if err == nil {
				_, err = get(s, BucketEndpoints, fmt.Sprint(i))
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	s.j.syncMu.Lock()
	defer s.j.syncMu.Unlock()
	if s.j.synced != s.j.written {
		t.Fatalf("synced %d of %d records after every Wait returned", s.j.synced, s.j.written)
	}
}

// A Note is visible at once, kept across a crash, and on disk after the
// next Record's fdatasync.
func TestNoteRidesOnTheNextSync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "berth.db")
	s := openBolt(t, path)
	if err := s.Note(func(tx Tx) error { return tx.Put(BucketEndpoints, "noted", record{Count: 1}) }); err != nil {
		t.Fatal(err)
	}
	if got, err := get(s, BucketEndpoints, "noted"); err != nil || got.Count != 1 {
		t.Fatalf("View after Note: %+v, %v", got, err)
	}
	s.j.syncMu.Lock()
	noted := s.j.written
	s.j.syncMu.Unlock()
	if err := record1(t, s, "recorded", 2).Wait(); err != nil {
		t.Fatal(err)
	}
	s.j.syncMu.Lock()
	synced := s.j.synced
	s.j.syncMu.Unlock()
	if synced < noted {
		t.Fatalf("synced %d after the Record's Wait, want the noted record %d too", synced, noted)
	}
	crash(t, s)
	s = openBolt(t, path)
	if got := keys(t, s, BucketEndpoints); !slices.Equal(got, []string{"noted", "recorded"}) {
		t.Fatalf("after crash: %q", got)
	}
}

// After a failed fdatasync the store refuses writes instead of making them
// visible while reporting them failed.
func TestWritesRefusedAfterAFailedSync(t *testing.T) {
	s := openBolt(t, filepath.Join(t.TempDir(), "berth.db"))
	record1(t, s, "before", 1)
	s.j.syncMu.Lock()
	s.j.syncErr = errors.New("sync journal: input/output error")
	s.j.syncMu.Unlock()
	if _, err := s.Record(func(tx Tx) error { return tx.Put(BucketEndpoints, "after", record{}) }); err == nil {
		t.Fatal("Record after a failed fdatasync succeeded")
	}
	if _, err := get(s, BucketEndpoints, "after"); err == nil {
		t.Fatal("the refused write is visible")
	}
}

// TestFailedAppendRefusesOnlyThatWrite: a record the journal cannot take
// (a full disk; here a descriptor that cannot write) is refused and not
// visible, and the store takes the next one once writing works again,
// with nothing of the refused one after a reopen.
func TestFailedAppendRefusesOnlyThatWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "berth.db")
	s := openBolt(t, path)
	if err := record1(t, s, "a", 1).Wait(); err != nil {
		t.Fatal(err)
	}
	good := s.j.f
	ro, err := os.Open(good.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	s.wmu.Lock()
	s.j.f = ro
	s.wmu.Unlock()
	if _, err := s.Record(func(tx Tx) error { return tx.Put(BucketEndpoints, "b", record{Name: "b", Count: 2}) }); err == nil {
		t.Fatal("Record succeeded with a journal that cannot be written")
	}
	if _, err := get(s, BucketEndpoints, "b"); err == nil {
		t.Fatal("the refused write is visible")
	}
	s.wmu.Lock()
	s.j.f = good
	s.wmu.Unlock()
	if err := record1(t, s, "c", 3).Wait(); err != nil {
		t.Fatalf("the write after the failed one: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	again := openBolt(t, path)
	for key, want := range map[string]bool{"a": true, "b": false, "c": true} {
		if _, err := get(again, BucketEndpoints, key); (err == nil) != want {
			t.Errorf("after reopen, %q present = %v, want %v", key, err == nil, want)
		}
	}
}

// Records round-trip through the binary format; a journal written by an
// older berth (JSON payloads) still replays; a payload in neither format
// ends the replay as a torn record does.
func TestJournalRecordFormats(t *testing.T) {
	ops := []op{
		{Bucket: BucketEndpoints, Key: "e1", Value: []byte(`{"Name":"a","Count":1}`)},
		{Bucket: BucketContainers, Key: "c1", Del: true},
		{Bucket: "", Key: "", Value: []byte(`"x"`)},
	}
	rec, err := encodeRecord(ops)
	if err != nil {
		t.Fatal(err)
	}
	if rec[8] != binaryPayload {
		t.Fatalf("payload starts with %q, want the binary marker", rec[8])
	}
	legacyPayload := []byte(`[{"b":"endpoints","k":"old","v":{"Name":"legacy"}},{"b":"containers","k":"gone","d":true}]`)
	legacy := make([]byte, 8, 8+len(legacyPayload))
	putHeader := func(rec []byte, payload []byte) {
		rec[0], rec[1], rec[2], rec[3] = byte(len(payload)), byte(len(payload)>>8), byte(len(payload)>>16), byte(len(payload)>>24)
		sum := crc32Of(payload)
		rec[4], rec[5], rec[6], rec[7] = byte(sum), byte(sum>>8), byte(sum>>16), byte(sum>>24)
	}
	putHeader(legacy, legacyPayload)
	legacy = append(legacy, legacyPayload...)
	unknown := []byte{0, 0, 0, 0, 0, 0, 0, 0, 'Z', 1, 2}
	putHeader(unknown, unknown[8:])

	data := append(append(append([]byte(nil), legacy...), rec...), 0, 0, 0, 0)
	got, err := decodeRecords(data)
	if err != nil || len(got) != 2 {
		t.Fatalf("decoded %d records (%v), want 2 (legacy, binary)", len(got), err)
	}
	// A whole record of a format this version cannot read is an error,
	// not a torn tail: records after it would be lost.
	if recs, err := decodeRecords(append(append(data[:len(data)-4:len(data)-4], unknown...), rec...)); err == nil {
		t.Errorf("a whole record of an unknown format decoded to %d records and no error", len(recs))
	}
	wantLegacy := []op{
		{Bucket: "endpoints", Key: "old", Value: []byte(`{"Name":"legacy"}`)},
		{Bucket: "containers", Key: "gone", Del: true},
	}
	for i, want := range [][]op{wantLegacy, ops} {
		if fmt.Sprint(opsString(got[i])) != fmt.Sprint(opsString(want)) {
			t.Errorf("record %d = %v, want %v", i, opsString(got[i]), opsString(want))
		}
	}
	// A payload cut short (the checksum guards whole records; this guards
	// the parser) decodes to whole ops only, or not at all, never panics.
	for cut := 1; cut < len(rec[8:]); cut++ {
		part, ok := decodePayload(rec[8 : 8+cut])
		if ok && (len(part) >= len(ops) || fmt.Sprint(opsString(part)) != fmt.Sprint(opsString(ops[:len(part)]))) {
			t.Errorf("a payload cut to %d bytes decoded to %v, not a prefix of the ops", cut, opsString(part))
		}
	}
}

func opsString(ops []op) []string {
	var out []string
	for _, o := range ops {
		out = append(out, fmt.Sprintf("%s/%s del=%v %s", o.Bucket, o.Key, o.Del, o.Value))
	}
	return out
}

func crc32Of(b []byte) uint32 { return crc32.Checksum(b, crcTable) }

// TestReplayThatStopsKeepsNewerRecords: an open that replays a rotated
// journal and stops before it is gone (a crash, or here a refused
// remove) leaves what the next open needs: deleted records stay deleted
// and rewritten ones keep their newer value. The journal was emptied
// before the rotated one was removed, so the next open replayed the
// rotated records alone over bbolt.
func TestReplayThatStopsKeepsNewerRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "berth.db")
	s := openBolt(t, path)
	release := make(chan struct{})
	s.foldHook = func() { <-release }
	put(t, s, BucketEndpoints, "gone", record{Name: "gone"})
	fillJournal(t, s)
	if err := s.Update(func(tx Tx) error { return tx.Delete(BucketEndpoints, "gone") }); err != nil {
		t.Fatal(err)
	}
	put(t, s, BucketContainers, "fill-0000", record{Name: "again", Count: -1})
	crash(t, s)
	close(release)
	waitCheckpoint(s)

	removeOld = func(string) error { return errors.New("refused") }
	t.Cleanup(func() { removeOld = os.Remove })
	if s, err := OpenBolt(path); err == nil {
		s.Close()
		t.Fatal("open succeeded with the rotated journal's removal refused")
	}
	removeOld = os.Remove

	s = openBolt(t, path)
	if r, err := get(s, BucketEndpoints, "gone"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted record came back: %q, %v", r.Name, err)
	}
	if r, err := get(s, BucketContainers, "fill-0000"); err != nil || r.Count != -1 {
		t.Errorf("rewritten record rolled back: Count %d, %v; want -1", r.Count, err)
	}
}

// waitCheckpoint waits for a background checkpoint of s, if one runs.
func waitCheckpoint(s *Bolt) {
	s.wmu.Lock()
	ch := s.checkpoint
	s.wmu.Unlock()
	if ch != nil {
		<-ch
	}
}

// fillJournal writes records under "fill-N" until the journal reaches
// checkpointBytes, the last write starting a background checkpoint.
func fillJournal(t *testing.T, s *Bolt) int {
	t.Helper()
	labels := map[string]string{"pad": string(make([]byte, 16<<10))}
	n := 0
	for running := false; !running; n++ {
		put(t, s, BucketContainers, fmt.Sprintf("fill-%04d", n), record{Name: "fill", Count: n, Labels: labels})
		s.wmu.Lock()
		running = s.checkpoint != nil
		s.wmu.Unlock()
	}
	return n
}

// TestBackgroundCheckpoint: while a checkpoint folds the rotated journal
// into bbolt, writes go on (into the new journal) and reads see every
// record, old and new; a crash at that point loses nothing (Open replays
// journal.old, then the journal), and the rotated file is gone after.
func TestBackgroundCheckpoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "berth.db")
	s := openBolt(t, path)
	release := make(chan struct{})
	s.foldHook = func() { <-release }
	put(t, s, BucketEndpoints, "gone", record{Name: "gone"})
	n := fillJournal(t, s)
	if _, err := os.Stat(path + ".journal.old"); err != nil {
		t.Fatalf("no rotated journal while the checkpoint runs: %v", err)
	}
	// The fold is held: these must not wait for it.
	if err := s.Update(func(tx Tx) error { return tx.Delete(BucketEndpoints, "gone") }); err != nil {
		t.Fatal(err)
	}
	put(t, s, BucketEndpoints, "new", record{Name: "new", Count: 7})
	put(t, s, BucketContainers, "fill-0000", record{Name: "again", Count: -1})
	if got := keys(t, s, BucketContainers); len(got) != n {
		t.Errorf("%d containers visible during the checkpoint, want %d", len(got), n)
	}
	if got, err := get(s, BucketContainers, "fill-0001"); err != nil || got.Count != 1 {
		t.Errorf("a frozen record during the checkpoint: %+v, %v", got, err)
	}
	if _, err := get(s, BucketEndpoints, "gone"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a record deleted after the rotation: %v, want not found", err)
	}
	crash(t, s)
	close(release)

	s = openBolt(t, path)
	if got := keys(t, s, BucketContainers); len(got) != n {
		t.Errorf("%d containers after a crash mid-checkpoint, want %d", len(got), n)
	}
	if got, err := get(s, BucketContainers, "fill-0000"); err != nil || got.Count != -1 {
		t.Errorf("a record rewritten after the rotation: %+v, %v; want the newer one", got, err)
	}
	if got, err := get(s, BucketEndpoints, "new"); err != nil || got.Count != 7 {
		t.Errorf("a record written after the rotation: %+v, %v", got, err)
	}
	if _, err := get(s, BucketEndpoints, "gone"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a deletion after the rotation was lost: %v", err)
	}
	if _, err := os.Stat(path + ".journal.old"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("rotated journal still there after Open: %v", err)
	}

	// A checkpoint that finishes: bbolt holds the records, the rotated
	// journal is gone, and Close folds the rest.
	n2 := n + fillJournal(t, s)
	waitCheckpoint(s)
	if _, err := os.Stat(path + ".journal.old"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("rotated journal still there after its checkpoint: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openBolt(t, path)
	if got := len(keys(t, s, BucketContainers)); got < n2-n {
		t.Errorf("%d containers after a finished checkpoint and Close, want at least %d", got, n2-n)
	}
}

// TestFailedCheckpointIsTriedAgain: a background checkpoint whose fold
// into bbolt fails (a full disk) leaves the store taking writes; reads see
// every record; the next write after retryCheckpoint folds the rotated
// records again; and a Close whose fold still fails leaves both journals
// for the next open, which loses nothing and keeps the newer values.
func TestFailedCheckpointIsTriedAgain(t *testing.T) {
	for _, closeWhileFailing := range []bool{false, true} {
		t.Run(fmt.Sprintf("closeWhileFailing=%v", closeWhileFailing), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "berth.db")
			s := openBolt(t, path)
			failing := failFolds(s)
			var heard []string
			var heardMu sync.Mutex
			s.OnFold(func(err error) {
				heardMu.Lock()
				defer heardMu.Unlock()
				heard = append(heard, fmt.Sprint(err != nil))
			})
			n := fillJournal(t, s)
			waitCheckpoint(s)
			s.wmu.Lock()
			unfolded, broken := s.unfolded != nil, s.broken
			s.wmu.Unlock()
			if !unfolded || broken != nil {
				t.Fatalf("after a failed fold: unfolded %v, broken %v; want the records kept for a retry, the store working", unfolded, broken)
			}
			put(t, s, BucketContainers, "fill-0001", record{Name: "newer", Count: -1})
			put(t, s, BucketEndpoints, "after", record{Name: "after"})
			if got := keys(t, s, BucketContainers); len(got) != n {
				t.Errorf("%d containers visible after the failed fold, want %d", len(got), n)
			}
			if closeWhileFailing {
				if err := s.Close(); err == nil {
					t.Error("Close folded nothing and said nothing")
				}
			} else {
				failing.Store(false)
				// A write after retryCheckpoint folds again; a retry that
				// started while the fold still failed (a stalled test)
				// only puts the next one off.
				for try := 0; try < 10; try++ {
					s.wmu.Lock()
					s.nextCheckpoint = time.Time{} // instead of waiting retryCheckpoint
					s.wmu.Unlock()
					put(t, s, BucketEndpoints, "retry", record{Name: "retry", Count: try})
					waitCheckpoint(s)
					s.wmu.Lock()
					unfolded, broken = s.unfolded != nil, s.broken
					s.wmu.Unlock()
					if !unfolded {
						break
					}
				}
				if unfolded || broken != nil {
					t.Errorf("after the retry: unfolded %v, broken %v", unfolded, broken)
				}
				if _, err := os.Stat(path + ".journal.old"); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the rotated journal is still there after the retry: %v", err)
				}
				heardMu.Lock()
				if strings.Join(heard, " ") != "true false" {
					t.Errorf("OnFold heard %q, want a failure once, then the recovery once", heard)
				}
				heardMu.Unlock()
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			}
			s = openBolt(t, path)
			if got := keys(t, s, BucketContainers); len(got) != n {
				t.Errorf("after reopen: %d containers, want %d", len(got), n)
			}
			if got, err := get(s, BucketContainers, "fill-0001"); err != nil || got.Name != "newer" {
				t.Errorf("after reopen, fill-0001 = %+v, %v; want the newer value", got, err)
			}
			if _, err := get(s, BucketEndpoints, "after"); err != nil {
				t.Errorf("after reopen, the write after the failed fold: %v", err)
			}
		})
	}
}

// TestRotateThatCannotPutTheJournalBackStopsWrites: a rotation that
// renamed the journal aside, failed to open the new one, and could not
// rename the old one back leaves the live records under journal.old.
// Every write is refused from then on: a later rotation would rename
// another file over them.
func TestRotateThatCannotPutTheJournalBackStopsWrites(t *testing.T) {
	s := openBolt(t, filepath.Join(t.TempDir(), "berth.db"))
	j := s.j
	j.rename = func(oldpath, newpath string) error {
		if err := os.Rename(oldpath, newpath); err != nil {
			return err
		}
		if newpath == j.oldPath() {
			// Something takes the journal's name meanwhile: the new file
			// cannot be opened, nor the old one renamed back.
			if err := os.MkdirAll(filepath.Join(j.path, "x"), 0o700); err != nil {
				t.Error(err)
			}
		}
		return nil
	}
	// Fill the journal until a write starts the checkpoint, whose
	// rotation fails.
	labels := map[string]string{"pad": string(make([]byte, 16<<10))}
	for n := 0; j.failed() == nil; n++ {
		if n > 10000 {
			t.Fatal("no checkpoint was started")
		}
		if _, err := s.Record(func(tx Tx) error {
			return tx.Put(BucketContainers, fmt.Sprintf("fill-%04d", n), record{Name: "fill", Count: n, Labels: labels})
		}); err != nil {
			t.Fatalf("write %d before the rotation: %v", n, err)
		}
	}
	if _, err := s.Record(func(tx Tx) error { return tx.Put(BucketEndpoints, "after", record{}) }); err == nil {
		t.Fatal("a write was taken after the journal could not be put back")
	}
	if _, err := os.Stat(j.oldPath()); err != nil {
		t.Errorf("the live records are not where replay looks for them first: %v", err)
	}
	crash(t, s)
}

// TestCloseFoldsTheUnfoldedRecordsFirst: a fold that failed, then room
// again, then Close before any retry: Close folds the rotated records
// before the newer ones, so that the next open has the newer values.
func TestCloseFoldsTheUnfoldedRecordsFirst(t *testing.T) {
	path := filepath.Join(t.TempDir(), "berth.db")
	s := openBolt(t, path)
	failing := failFolds(s)
	n := fillJournal(t, s)
	waitCheckpoint(s)
	s.wmu.Lock()
	s.nextCheckpoint = time.Now().Add(time.Hour) // no retry before Close
	s.wmu.Unlock()
	put(t, s, BucketContainers, "fill-0001", record{Name: "newer", Count: -1})
	if err := s.Update(func(tx Tx) error { return tx.Delete(BucketContainers, "fill-0002") }); err != nil {
		t.Fatal(err)
	}
	failing.Store(false)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openBolt(t, path)
	if got := keys(t, s, BucketContainers); len(got) != n-1 {
		t.Errorf("after reopen: %d containers, want %d (one deleted after the rotation)", len(got), n-1)
	}
	if got, err := get(s, BucketContainers, "fill-0001"); err != nil || got.Name != "newer" {
		t.Errorf("after reopen, fill-0001 = %+v, %v; want the newer value", got, err)
	}
}

// failFolds makes s's folds into bbolt fail with ENOSPC (a full disk)
// until the returned flag is cleared.
func failFolds(s *Bolt) *atomic.Bool {
	failing := new(atomic.Bool)
	failing.Store(true)
	s.commitHook = func() error {
		if failing.Load() {
			return unix.ENOSPC
		}
		return nil
	}
	return failing
}

// TestOpenRefusesAWholeRecordItCannotRead: a journal holding a record of a
// format this version does not know (a newer berth's, left by a crash) is
// refused at Open, and left as it was, rather than replayed up to that
// record and emptied, which lost it and every record after it.
func TestOpenRefusesAWholeRecordItCannotRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "berth.db")
	s := openBolt(t, path)
	put(t, s, BucketEndpoints, "a", record{Name: "a", Count: 1})
	crash(t, s)
	j, err := os.ReadFile(path + ".journal")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := decodeRecords(j)
	if err != nil || len(recs) != 1 {
		t.Fatalf("records: %d, %v", len(recs), err)
	}
	a, _ := encodeRecord(recs[0])
	b, _ := encodeRecord([]op{{Bucket: BucketEndpoints, Key: "b", Value: []byte(`{"name":"b","count":2}`)}})
	future := []byte("Cfuture")
	frame := binary.LittleEndian.AppendUint32(nil, uint32(len(future)))
	frame = binary.LittleEndian.AppendUint32(frame, crc32Of(future))
	data := slices.Concat(a, frame, future, b)
	if err := os.WriteFile(path+".journal", data, 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := OpenBolt(path); err == nil {
		s.Close()
		t.Fatal("Open replayed a journal with a record it cannot read")
	}
	after, err := os.ReadFile(path + ".journal")
	if err != nil || !bytes.Equal(after, data) {
		t.Errorf("the refused journal changed: %d bytes, was %d (%v)", len(after), len(data), err)
	}
}
