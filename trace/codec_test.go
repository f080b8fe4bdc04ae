package trace

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/parquet-go/parquet-go/compress/zstd"
)

// The windowed codec writes the same segments as parquet-go's own zstd
// codec at the same level, so traces are byte for byte what they were.
func TestSegmentCodecBytes(t *testing.T) {
	rows := interleaved(200_000, rand.New(rand.NewPCG(5, 6))) // a full segment, pages at their largest
	for i := range rows {
		rows[i].Kind, rows[i].Source, rows[i].RequestID = "token", "client", "c1-r"+string(rune('a'+i%26))
	}
	write := func(dir string) []byte {
		w, err := NewTableWriter(dir, TableEvents, "codec", CompareEvent)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Add(rows...); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, TableEvents, SegmentName(0)))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	got := write(t.TempDir())
	saved := segmentCodec
	defer func() { segmentCodec = saved }()
	segmentCodec = &zstd.Codec{Level: zstd.SpeedDefault}
	want := write(t.TempDir())
	if !bytes.Equal(got, want) {
		t.Fatalf("segments differ: %d bytes against %d with parquet-go's codec", len(got), len(want))
	}
}
