package analyze

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestIDCacheNeverMisnames looks up ids, tasks and lengths that share
// slots against a map of every id: a hit must be the id the map holds,
// and the test must see hits, and misses of ids seen before (slots shared).
func TestIDCacheNeverMisnames(t *testing.T) {
	type key struct {
		raw     string
		task    int32
		hasTask bool
	}
	r := rand.New(rand.NewPCG(1, 2))
	var c idCache
	all := map[key]int32{}
	var hits, evicted int
	for range 200_000 {
		n := r.IntN(3000)
		raw := fmt.Sprintf("c%d-s%02d-%d", n%5, n%32, n)
		switch r.IntN(8) {
		case 0:
			raw = ""
		case 1:
			raw = raw[:min(len(raw), r.IntN(8))] // shorter than a word
		}
		k := key{raw, int32(r.IntN(3)), r.IntN(2) == 0}
		if !k.hasTask {
			k.task = 0
		}
		e := c.slot([]byte(k.raw), k.task, k.hasTask)
		if id, ok := e.get([]byte(k.raw), k.task, k.hasTask); ok {
			if want, seen := all[k]; !seen || want != id {
				t.Fatalf("%+v: cache says %d, the map %d (seen %v)", k, id, want, seen)
			}
			hits++
			continue
		}
		id, seen := all[k]
		if seen {
			evicted++
		} else {
			id = int32(len(all))
			all[k] = id
		}
		e.set(k.raw, k.task, k.hasTask, id)
	}
	if hits == 0 || evicted == 0 {
		t.Fatalf("%d hits, %d misses of known ids: the test does not exercise both", hits, evicted)
	}
}

// TestIDEntryMatchesWholeKey: ids that share a slot differ in their bytes,
// task or whether a task sent them, and an entry answers only its own.
func TestIDEntryMatchesWholeKey(t *testing.T) {
	var e idEntry
	if _, ok := e.get(nil, 0, false); ok {
		t.Fatal("an empty slot answered the empty id")
	}
	e.set("r1", 2, true, 7)
	if id, ok := e.get([]byte("r1"), 2, true); !ok || id != 7 {
		t.Fatalf("own key: %d %v", id, ok)
	}
	for _, k := range []struct {
		raw     string
		task    int32
		hasTask bool
	}{{"r2", 2, true}, {"r1", 3, true}, {"r1", 2, false}, {"r", 2, true}, {"", 2, true}} {
		if id, ok := e.get([]byte(k.raw), k.task, k.hasTask); ok {
			t.Errorf("%+v answered as r1 of task 2: %d", k, id)
		}
	}
}
