package store

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// record stands for any of berth's records.
type record struct {
	Name   string            `json:"name"`
	Count  int               `json:"count"`
	Labels map[string]string `json:"labels,omitempty"`
}

// impls opens a fresh store of each implementation; every test below runs
// against both, so Memory cannot drift from Bolt.
var impls = []struct {
	name string
	open func(t *testing.T) Store
}{
	{"bolt", func(t *testing.T) Store {
		s, err := OpenBolt(filepath.Join(t.TempDir(), "berth.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}},
	{"memory", func(t *testing.T) Store {
		s := NewMemory()
		t.Cleanup(func() { s.Close() })
		return s
	}},
}

func forEachImpl(t *testing.T, test func(t *testing.T, s Store)) {
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) { test(t, impl.open(t)) })
	}
}

func put(t *testing.T, s Store, bucket, key string, v any) {
	t.Helper()
	if err := s.Update(func(tx Tx) error { return tx.Put(bucket, key, v) }); err != nil {
		t.Fatalf("put %s/%s: %v", bucket, key, err)
	}
}

func get(s Store, bucket, key string) (record, error) {
	var r record
	err := s.View(func(tx Tx) error { return tx.Get(bucket, key, &r) })
	return r, err
}

func keys(t *testing.T, s Store, bucket string) []string {
	t.Helper()
	var got []string
	err := s.View(func(tx Tx) error {
		return tx.ForEach(bucket, func(key string, raw []byte) error {
			got = append(got, key)
			return nil
		})
	})
	if err != nil {
		t.Fatalf("ForEach %s: %v", bucket, err)
	}
	return got
}

func TestPutGetOverwrite(t *testing.T) {
	forEachImpl(t, func(t *testing.T, s Store) {
		want := record{Name: "web", Count: 1, Labels: map[string]string{"a": "b"}}
		put(t, s, BucketNetworks, "n1", want)
		got, err := get(s, BucketNetworks, "n1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("get (-want +got):\n%s", diff)
		}
		put(t, s, BucketNetworks, "n1", record{Name: "web", Count: 2})
		if got, _ := get(s, BucketNetworks, "n1"); got.Count != 2 || got.Labels != nil {
			t.Fatalf("after overwrite got %+v", got)
		}
	})
}

func TestGetMissing(t *testing.T) {
	forEachImpl(t, func(t *testing.T, s Store) {
		put(t, s, BucketNetworks, "n1", record{})
		for _, c := range []struct{ bucket, key string }{
			{BucketNetworks, "nope"},   // missing key
			{BucketEndpoints, "n1"},    // missing bucket
			{"no-such-bucket", "nope"}, // never made
		} {
			_, err := get(s, c.bucket, c.key)
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("get %s/%s = %v, want ErrNotFound", c.bucket, c.key, err)
				continue
			}
			if !strings.Contains(err.Error(), `"`+c.key+`"`) || !strings.Contains(err.Error(), `"`+c.bucket+`"`) {
				t.Errorf("error %q does not name bucket %q and key %q", err, c.bucket, c.key)
			}
		}
	})
}

func TestDelete(t *testing.T) {
	forEachImpl(t, func(t *testing.T, s Store) {
		put(t, s, BucketContainers, "c1", record{Name: "c1"})
		for _, k := range []string{"c1", "c1", "never"} { // twice, then a missing key
			if err := s.Update(func(tx Tx) error { return tx.Delete(BucketContainers, k) }); err != nil {
				t.Fatalf("delete %q: %v", k, err)
			}
		}
		if err := s.Update(func(tx Tx) error { return tx.Delete("no-such-bucket", "x") }); err != nil {
			t.Fatalf("delete in a missing bucket: %v", err)
		}
		if _, err := get(s, BucketContainers, "c1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get after delete = %v, want ErrNotFound", err)
		}
	})
}

func TestForEachOrderAndRaw(t *testing.T) {
	forEachImpl(t, func(t *testing.T, s Store) {
		for _, k := range []string{"b", "a1", "c", "B", "a", "10", "9"} {
			put(t, s, BucketImages, k, record{Name: k})
		}
		put(t, s, BucketSandboxes, "other", record{})
		want := []string{"10", "9", "B", "a", "a1", "b", "c"} // byte order
		if diff := cmp.Diff(want, keys(t, s, BucketImages)); diff != "" {
			t.Fatalf("ForEach order (-want +got):\n%s", diff)
		}
		err := s.View(func(tx Tx) error {
			return tx.ForEach(BucketImages, func(key string, raw []byte) error {
				var r record
				if err := json.Unmarshal(raw, &r); err != nil || r.Name != key {
					t.Errorf("raw of %q = %s (%v)", key, raw, err)
				}
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := keys(t, s, "no-such-bucket"); len(got) != 0 {
			t.Fatalf("ForEach of a missing bucket visited %v", got)
		}
	})
}

func TestForEachStopsOnError(t *testing.T) {
	forEachImpl(t, func(t *testing.T, s Store) {
		for _, k := range []string{"a", "b", "c"} {
			put(t, s, BucketImages, k, record{})
		}
		stop := errors.New("stop")
		var seen []string
		err := s.View(func(tx Tx) error {
			return tx.ForEach(BucketImages, func(key string, _ []byte) error {
				seen = append(seen, key)
				if key == "b" {
					return stop
				}
				return nil
			})
		})
		if !errors.Is(err, stop) || !cmp.Equal(seen, []string{"a", "b"}) {
			t.Fatalf("err = %v, seen %v; want stop after a, b", err, seen)
		}
	})
}

func TestUpdateSeesItsOwnWrites(t *testing.T) {
	forEachImpl(t, func(t *testing.T, s Store) {
		put(t, s, BucketEndpoints, "e1", record{Count: 1})
		put(t, s, BucketEndpoints, "e3", record{Count: 3})
		err := s.Update(func(tx Tx) error {
			if err := tx.Put(BucketEndpoints, "e2", record{Count: 2}); err != nil {
				return err
			}
			if err := tx.Delete(BucketEndpoints, "e3"); err != nil {
				return err
			}
			var r record
			if err := tx.Get(BucketEndpoints, "e2", &r); err != nil || r.Count != 2 {
				t.Errorf("Get of a pending Put = %+v, %v", r, err)
			}
			if err := tx.Get(BucketEndpoints, "e3", &r); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get of a pending Delete = %v, want ErrNotFound", err)
			}
			var seen []string
			tx.ForEach(BucketEndpoints, func(k string, _ []byte) error { seen = append(seen, k); return nil })
			if !cmp.Equal(seen, []string{"e1", "e2"}) {
				t.Errorf("ForEach inside Update saw %v, want [e1 e2]", seen)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"e1", "e2"}, keys(t, s, BucketEndpoints)); diff != "" {
			t.Fatalf("after commit (-want +got):\n%s", diff)
		}
	})
}

func TestRollback(t *testing.T) {
	boom := errors.New("boom")
	forEachImpl(t, func(t *testing.T, s Store) {
		put(t, s, BucketNetworks, "keep", record{Count: 1})
		put(t, s, BucketNetworks, "doomed", record{Count: 1})
		err := s.Update(func(tx Tx) error {
			tx.Put(BucketNetworks, "keep", record{Count: 99})
			tx.Put(BucketNetworks, "new", record{})
			tx.Put(BucketMeta, "new-bucket", record{})
			tx.Delete(BucketNetworks, "doomed")
			return boom
		})
		if err != boom {
			t.Fatalf("Update = %v, want fn's error unchanged", err)
		}
		checkUntouched(t, s)
	})
}

func TestRollbackOnPanic(t *testing.T) {
	forEachImpl(t, func(t *testing.T, s Store) {
		put(t, s, BucketNetworks, "keep", record{Count: 1})
		put(t, s, BucketNetworks, "doomed", record{Count: 1})
		func() {
			defer func() {
				if recover() == nil {
					t.Fatal("the panic did not come through")
				}
			}()
			s.Update(func(tx Tx) error {
				tx.Put(BucketNetworks, "keep", record{Count: 99})
				tx.Put(BucketNetworks, "new", record{})
				tx.Delete(BucketNetworks, "doomed")
				panic("in fn")
			})
		}()
		checkUntouched(t, s)
		put(t, s, BucketNetworks, "after", record{}) // the store still works
	})
}

// checkUntouched verifies the state TestRollback* set up before the failed Update.
func checkUntouched(t *testing.T, s Store) {
	t.Helper()
	if got, err := get(s, BucketNetworks, "keep"); err != nil || got.Count != 1 {
		t.Errorf("keep = %+v, %v; want the old record", got, err)
	}
	if diff := cmp.Diff([]string{"doomed", "keep"}, keys(t, s, BucketNetworks)); diff != "" {
		t.Errorf("records after rollback (-want +got):\n%s", diff)
	}
	if got := keys(t, s, BucketMeta); len(got) != 0 {
		t.Errorf("bucket made in a rolled back Update holds %v", got)
	}
}

func TestViewCannotWrite(t *testing.T) {
	forEachImpl(t, func(t *testing.T, s Store) {
		put(t, s, BucketNetworks, "n1", record{Count: 1})
		err := s.View(func(tx Tx) error {
			if err := tx.Put(BucketNetworks, "n2", record{}); !errors.Is(err, ErrReadOnly) {
				t.Errorf("Put in View = %v, want ErrReadOnly", err)
			}
			if err := tx.Delete(BucketNetworks, "n1"); !errors.Is(err, ErrReadOnly) {
				t.Errorf("Delete in View = %v, want ErrReadOnly", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"n1"}, keys(t, s, BucketNetworks)); diff != "" {
			t.Fatalf("records (-want +got):\n%s", diff)
		}
	})
}

func TestBadNamesAndStaleTx(t *testing.T) {
	forEachImpl(t, func(t *testing.T, s Store) {
		var stale Tx
		err := s.Update(func(tx Tx) error {
			stale = tx
			for _, c := range []struct{ bucket, key string }{{"", "k"}, {"b", ""}} {
				if err := tx.Put(c.bucket, c.key, record{}); err == nil {
					t.Errorf("Put(%q, %q) succeeded", c.bucket, c.key)
				}
				if err := tx.Get(c.bucket, c.key, &record{}); err == nil || errors.Is(err, ErrNotFound) {
					t.Errorf("Get(%q, %q) = %v, want a name error", c.bucket, c.key, err)
				}
			}
			if err := tx.ForEach("", func(string, []byte) error { return nil }); err == nil {
				t.Error("ForEach of an empty bucket name succeeded")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := stale.Put(BucketMeta, "k", record{}); !errors.Is(err, ErrTxDone) {
			t.Errorf("Put on a finished Tx = %v, want ErrTxDone", err)
		}
		if err := stale.Get(BucketMeta, "k", &record{}); !errors.Is(err, ErrTxDone) {
			t.Errorf("Get on a finished Tx = %v, want ErrTxDone", err)
		}
	})
}

func TestClosed(t *testing.T) {
	forEachImpl(t, func(t *testing.T, s Store) {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Update(func(Tx) error { return nil }); !errors.Is(err, ErrClosed) {
			t.Errorf("Update after Close = %v, want ErrClosed", err)
		}
		if err := s.View(func(Tx) error { return nil }); !errors.Is(err, ErrClosed) {
			t.Errorf("View after Close = %v, want ErrClosed", err)
		}
	})
}

func TestConcurrentUpdates(t *testing.T) {
	forEachImpl(t, func(t *testing.T, s Store) {
		put(t, s, BucketMeta, "counter", record{})
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 25 {
					err := s.Update(func(tx Tx) error {
						var r record
						if err := tx.Get(BucketMeta, "counter", &r); err != nil {
							return err
						}
						r.Count++
						return tx.Put(BucketMeta, "counter", r)
					})
					if err != nil {
						t.Error(err)
					}
					if _, err := get(s, BucketMeta, "counter"); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		if got, _ := get(s, BucketMeta, "counter"); got.Count != 200 {
			t.Fatalf("counter = %d, want 200: an update was lost", got.Count)
		}
	})
}
