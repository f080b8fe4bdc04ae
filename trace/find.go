package trace

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// RunsIn is dir if it is a run (it holds meta.json) or a job directory (it
// holds a job manifest: its node runs are one experiment), else the runs
// and job directories one level inside it, else two levels, in name order;
// nothing if dir is not a directory or holds neither.
func RunsIn(dir string) []string {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil
	}
	if isUnit(dir) {
		return []string{dir}
	}
	for _, pattern := range []string{"*", filepath.Join("*", "*")} {
		mm, _ := filepath.Glob(filepath.Join(dir, pattern))
		var out []string
		for _, p := range mm {
			// A node's run inside a job found at this level belongs to
			// its job, found at the level above.
			if isUnit(p) && !IsJobDir(filepath.Dir(p)) {
				out = append(out, p)
			}
		}
		if len(out) > 0 {
			sort.Strings(out)
			return out
		}
	}
	return nil
}

// isUnit: dir is a run or a job directory.
func isUnit(dir string) bool {
	if st, err := os.Stat(filepath.Join(dir, MetaFile)); err == nil && !st.IsDir() {
		return true
	}
	return IsJobDir(dir)
}

// FindRuns expands paths into run and job directories (RunsIn of each, in
// the order given). A path that is not a directory, or holds no run, is an
// error naming it.
func FindRuns(paths []string) ([]string, error) {
	var dirs []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("%s: not a directory (give a run directory or a directory of runs)", p)
		}
		found := RunsIn(p)
		if len(found) == 0 {
			return nil, fmt.Errorf("%s: not an llem run (no %s) and no runs inside it", p, MetaFile)
		}
		dirs = append(dirs, found...)
	}
	return dirs, nil
}
