package spill

import (
	"os"
	"strings"
	"testing"
)

// TestFile: bytes appended come back by offset, the file leaves nothing
// in $TMPDIR, and a read that fails is remembered as the File's error.
func TestFile(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	f := New("test bytes")
	if f.Err() != nil || f.Written() != 0 {
		t.Fatal("a new File has an error or bytes")
	}
	a, ok1 := f.Append([]byte("hello "))
	b, ok2 := f.Append([]byte("world"))
	if !ok1 || !ok2 || a != 0 || b != 6 || f.Written() != 11 {
		t.Fatalf("appends at %d %v, %d %v; %d written", a, ok1, b, ok2, f.Written())
	}
	if files, _ := os.ReadDir(tmp); len(files) != 0 {
		t.Errorf("the file is left in TMPDIR: %v", files)
	}
	got := make([]byte, 5)
	if !f.ReadAt(got, b) || string(got) != "world" {
		t.Fatalf("read back %q", got)
	}
	f.Close()
	if f.ReadAt(got, a) {
		t.Fatal("a read of a closed file succeeded")
	}
	if err := f.Err(); err == nil || !strings.Contains(err.Error(), "reading back the test bytes") {
		t.Errorf("Err = %v", err)
	}
	if (*File)(nil).Err() != nil {
		t.Error("a nil File has an error")
	}
}
