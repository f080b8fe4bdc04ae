//go:build unix

package eventsrv

import (
	"os"
	"syscall"
	"testing"
)

func setUmask(mask int) int { return syscall.Umask(mask) }

func TestSocketMode(t *testing.T) {
	old := setUmask(0) // the widest umask: the mode must not depend on it
	defer setUmask(old)
	s := start(t, Options{})
	fi, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want socket 0600", fi.Mode())
	}
}
