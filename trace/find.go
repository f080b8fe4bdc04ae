package trace

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// RunsIn is dir if it is a run (it holds meta.json), else the runs one
// level inside it, else two levels, in name order; nothing if dir is not a
// directory or holds no run.
func RunsIn(dir string) []string {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, MetaFile)); err == nil {
		return []string{dir}
	}
	for _, pattern := range []string{"*", filepath.Join("*", "*")} {
		mm, _ := filepath.Glob(filepath.Join(dir, pattern, MetaFile))
		if len(mm) > 0 {
			out := make([]string, len(mm))
			for i, p := range mm {
				out[i] = filepath.Dir(p)
			}
			sort.Strings(out)
			return out
		}
	}
	return nil
}

// FindRuns expands paths into run directories (RunsIn of each, in the
// order given). A path that is not a directory, or holds no run, is an
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
