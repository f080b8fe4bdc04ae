package trace

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go/encoding/delta"
)

// deltaInputs are int64 series of every length class that matters: empty,
// one value, whole blocks (1 + 128k values: no partial block), partial
// blocks, steps that wrap around int64, and stamps with jitter.
func deltaInputs() map[string][]int64 {
	rng := rand.New(rand.NewPCG(1, 2))
	in := map[string][]int64{"empty": {}, "one": {42}, "two": {5, -3}}
	for _, n := range []int{129, 257, 1 + 128*7, 130, 200, 1404, 3000} {
		ts := make([]int64, n)
		t := int64(1796627367419913)
		for i := range ts {
			t += 20000 + rng.Int64N(10000) - 5000
			ts[i] = t
		}
		in["stamps"+strconv.Itoa(n)] = ts
		wild := make([]int64, n)
		for i := range wild {
			wild[i] = int64(rng.Uint64())
		}
		wild[n/2] = math.MinInt64
		wild[n-1] = math.MaxInt64
		in["wild"+strconv.Itoa(n)] = wild
		same := make([]int64, n)
		in["constant"+strconv.Itoa(n)] = same
	}
	return in
}

// TestDeltaPackedRoundTrip decodes deltaPacked's output with parquet-go's
// decoder (the one every llem reader uses), for int64 and int32.
func TestDeltaPackedRoundTrip(t *testing.T) {
	var dec delta.BinaryPackedEncoding
	for name, src := range deltaInputs() {
		b, err := fixedDelta.EncodeInt64(nil, src)
		if err != nil {
			t.Fatal(err)
		}
		got, err := dec.DecodeInt64(nil, b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !slices.Equal(got, src) {
			t.Errorf("%s: int64 round trip differs", name)
		}
		src32 := make([]int32, len(src))
		for i, v := range src {
			src32[i] = int32(v)
		}
		b, _ = fixedDelta.EncodeInt32(nil, src32)
		got32, err := dec.DecodeInt32(nil, b)
		if err != nil {
			t.Fatalf("%s (int32): %v", name, err)
		}
		if !slices.Equal(got32, src32) {
			t.Errorf("%s: int32 round trip differs", name)
		}
	}
}

// TestDeltaPackedMatchesParquetGo: where a page has no partial block,
// deltaPacked writes parquet-go's bytes exactly; where it has one, it is
// never longer, and shorter for stamps (the mended block).
func TestDeltaPackedMatchesParquetGo(t *testing.T) {
	var pg delta.BinaryPackedEncoding
	for name, src := range deltaInputs() {
		ours, _ := fixedDelta.EncodeInt64(nil, src)
		theirs, _ := pg.EncodeInt64(nil, src)
		partial := len(src) > 1 && (len(src)-1)%deltaBlock != 0
		switch {
		case !partial && !bytes.Equal(ours, theirs):
			t.Errorf("%s (%d values, whole blocks): %d bytes differ from parquet-go's %d", name, len(src), len(ours), len(theirs))
		case len(ours) > len(theirs):
			t.Errorf("%s: %d bytes, parquet-go %d", name, len(ours), len(theirs))
		case partial && strings.HasPrefix(name, "stamps") && len(ours) >= len(theirs):
			t.Errorf("%s: %d bytes, not fewer than parquet-go's %d", name, len(ours), len(theirs))
		}
	}
}

func BenchmarkDeltaPacked(b *testing.B) {
	src := deltaInputs()["stamps3000"]
	var pg delta.BinaryPackedEncoding
	var buf []byte
	b.Run("llem", func(b *testing.B) {
		for b.Loop() {
			buf, _ = fixedDelta.EncodeInt64(buf, src)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(src)), "ns/value")
	})
	b.Run("parquet-go", func(b *testing.B) {
		for b.Loop() {
			buf, _ = pg.EncodeInt64(buf, src)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(src)), "ns/value")
	})
}

// The table writer uses deltaPacked: a driver power segment whose stamps
// end in a partial block stores its timestamp_us column in fewer bytes
// (before compression) than parquet-go's encoding of the stamps alone.
func TestWriterUsesDeltaPacked(t *testing.T) {
	stamps := deltaInputs()["stamps200"] // one whole block and a partial one
	dir := t.TempDir()
	w, err := NewTableWriter(dir, TableDriverPower, "0123456789abcdef", CompareDriverPower)
	if err != nil {
		t.Fatal(err)
	}
	for _, us := range stamps {
		if err := w.Add(DriverPowerSample{GPU: 0, TimestampNs: us * 1000, DriverPowerMw: 300_000}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, TableDriverPower, SegmentName(0)))
	if err != nil {
		t.Fatal(err)
	}
	pf, err := openParquet(b)
	if err != nil {
		t.Fatal(err)
	}
	var got int64 = -1
	for _, c := range pf.Metadata().RowGroups[0].Columns {
		if strings.Join(c.MetaData.PathInSchema, ".") == "timestamp_us" {
			got = c.MetaData.TotalUncompressedSize
		}
	}
	theirs, err := new(delta.BinaryPackedEncoding).EncodeInt64(nil, stamps)
	if err != nil {
		t.Fatal(err)
	}
	if got < 0 || got >= int64(len(theirs)) {
		t.Errorf("timestamp_us takes %d bytes uncompressed (page header included); parquet-go's encoding of the stamps alone is %d: the writer does not use deltaPacked", got, len(theirs))
	}
}
