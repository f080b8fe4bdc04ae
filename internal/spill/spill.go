// Package spill is a temporary file for what a long analysis would
// otherwise hold in memory (the packed token events, the packed GPU
// samples): bytes are appended once and read back by offset, from the
// page cache at memory speed. The file is made on the first write, in
// os.TempDir ($TMPDIR), and removed at once where the system allows (the
// descriptor keeps it until it is closed), else when the File is
// collected.
package spill

import (
	"fmt"
	"os"
	"runtime"
	"sync"
)

// File is one temporary file; its methods may be called from several
// goroutines at once.
type File struct {
	what string // what it holds, for errors: "packed tokens"

	mu      sync.Mutex
	f       *os.File
	end     int64 // where the next write goes
	noWrite bool  // a file could not be made or written: keep data in memory
	err     error // the first failed read: what was read from it is incomplete
}

// New is a File holding what (named in errors), not yet made.
func New(what string) *File { return &File{what: what} }

// Append writes b at the end of the file and returns its offset; ok is
// false where the file could not be made or written, and then for every
// later call: the caller keeps its data in memory.
func (s *File) Append(b []byte) (off int64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.noWrite {
		return 0, false
	}
	if s.f == nil {
		f, err := os.CreateTemp("", "llem-spill-*")
		if err != nil {
			s.noWrite = true
			return 0, false
		}
		removed := os.Remove(f.Name()) == nil
		runtime.AddCleanup(s, func(f *os.File) {
			f.Close()
			if !removed {
				os.Remove(f.Name())
			}
		}, f)
		s.f = f
	}
	if _, err := s.f.WriteAt(b, s.end); err != nil {
		s.noWrite = true
		return 0, false
	}
	off = s.end
	s.end += int64(len(b))
	return off, true
}

// ReadAt fills b from offset off; false if it could not (Err says why).
func (s *File) ReadAt(b []byte, off int64) bool {
	s.mu.Lock()
	f := s.f
	s.mu.Unlock()
	var err error
	if f == nil {
		err = fmt.Errorf("nothing was written")
	} else {
		_, err = f.ReadAt(b, off)
	}
	if err != nil {
		s.mu.Lock()
		if s.err == nil {
			s.err = fmt.Errorf("reading back the %s from a temporary file: %w", s.what, err)
		}
		s.mu.Unlock()
		return false
	}
	return true
}

// Err is the first failed read (nil for a nil File).
func (s *File) Err() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Written is how many bytes were appended.
func (s *File) Written() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.end
}

// Close closes the file now (a test of a failed read uses it).
func (s *File) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	return s.f.Close()
}
