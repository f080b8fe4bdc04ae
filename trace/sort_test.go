package trace

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// interleaved is what the recorder's events writer holds at 50,000
// events/s: batches of ~30 events from 8 connections, each connection's
// stamps increasing, the connections interleaved batch by batch, with
// ties (equal stamps) both within and across connections.
func interleaved(n int, r *rand.Rand) []Event {
	rows := make([]Event, 0, n)
	var next [8]int64
	for len(rows) < n {
		c := r.IntN(8)
		for range min(1+r.IntN(60), n-len(rows)) {
			next[c] += int64(r.IntN(3)) * 1000 // a third of the steps are ties
			rows = append(rows, Event{TimestampNs: next[c], GPU: int32(c), Count: ptr(int64(len(rows)))})
		}
	}
	return rows
}

func TestSortSegmentIsStable(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var sc sortScratch
	for trial := range 200 {
		var rows []Event
		switch trial % 3 {
		case 0:
			rows = interleaved(r.IntN(3000), r)
		case 1: // random stamps from a small range: many ties
			rows = make([]Event, r.IntN(500))
			for i := range rows {
				rows[i] = Event{TimestampNs: int64(r.IntN(20)), Count: ptr(int64(i))}
			}
		default: // already sorted
			rows = interleaved(r.IntN(500), r)
			slices.SortStableFunc(rows, CompareEvent)
		}
		want := slices.Clone(rows)
		slices.SortStableFunc(want, CompareEvent)
		generic := slices.Clone(rows)
		sortSegment(rows, CompareEvent, orderKey(CompareEvent), &sc)
		sortSegment(generic, CompareEvent, nil, &sc)
		for i := range rows {
			if rows[i].TimestampNs != generic[i].TimestampNs || *rows[i].Count != *generic[i].Count {
				t.Fatalf("trial %d: row %d differs between the keyed and the generic sort", trial, i)
			}
			if rows[i].TimestampNs != want[i].TimestampNs || *rows[i].Count != *want[i].Count {
				t.Fatalf("trial %d: row %d is (%d, #%d), the stable sort has (%d, #%d)", trial, i,
					rows[i].TimestampNs, *rows[i].Count, want[i].TimestampNs, *want[i].Count)
			}
		}
	}
	// Another comparator (GPU, then time), rows of another type.
	dp := make([]DriverPowerSample, 2000)
	for i := range dp {
		dp[i] = DriverPowerSample{GPU: int32(r.IntN(4)), TimestampNs: int64(r.IntN(100)), DriverPowerMw: int64(i)}
	}
	want := slices.Clone(dp)
	slices.SortStableFunc(want, CompareDriverPower)
	generic := slices.Clone(dp)
	sortSegment(dp, CompareDriverPower, orderKey(CompareDriverPower), &sc)
	sortSegment(generic, CompareDriverPower, nil, &sc)
	if !slices.Equal(dp, want) || !slices.Equal(generic, want) {
		t.Fatal("driver power rows: not the stable order")
	}
	// Only this package's orderings get a key: an equivalent function does not.
	if orderKey(CompareEvent) == nil || orderKey(CompareState) == nil || orderKey(CompareEnergy) == nil ||
		orderKey(func(a, b Event) int { return CompareEvent(a, b) }) != nil {
		t.Fatal("orderKey")
	}
}

// The events segment sort at 50,000 events/s: one segment of 50,000
// interleaved rows.
func BenchmarkSortSegment(b *testing.B) {
	src := interleaved(50_000, rand.New(rand.NewPCG(3, 4)))
	rows := make([]Event, len(src))
	b.Run("stable", func(b *testing.B) {
		for b.Loop() {
			copy(rows, src)
			slices.SortStableFunc(rows, CompareEvent)
		}
	})
	b.Run("generic", func(b *testing.B) {
		var sc sortScratch
		for b.Loop() {
			copy(rows, src)
			sortSegment(rows, CompareEvent, nil, &sc)
		}
	})
	b.Run("keyed", func(b *testing.B) {
		var sc sortScratch
		key := orderKey(CompareEvent)
		for b.Loop() {
			copy(rows, src)
			sortSegment(rows, CompareEvent, key, &sc)
		}
	})
}
