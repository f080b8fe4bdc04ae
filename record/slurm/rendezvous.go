package slurm

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/llem/llem/record/eventsrv"
	"github.com/llem/llem/trace"
)

// The tasks of one job step on one node meet in a node-local folder,
// $TMPDIR/llem-UID/JOB.STEP.NODE: the sampler listens on node.sock there,
// and each other task opens its own LLEM_EVENTS socket there before its
// command starts, so its events are taken (and kept) from the first line
// whatever the order the tasks start in. The node name is part of the
// path because several slurmd may share one host (and its /tmp); nothing
// in it needs a shared file system.
const (
	nodeSocket   = "node.sock"
	failedMarker = "sampler-failed" // written by a sampler that could not start: the others stop waiting
)

// rendezvousDir makes (or finds) the node's meeting folder. The folder
// above it belongs to the user, mode 0700: another user could otherwise
// pre-create it and read or forge the job's events.
func rendezvousDir(t *Task) (string, error) {
	base := filepath.Join(os.TempDir(), fmt.Sprintf("llem-%d", os.Getuid()))
	if err := os.Mkdir(base, 0o700); err != nil && !os.IsExist(err) {
		return "", fmt.Errorf("task rendezvous: %w (set TMPDIR to a node-local folder)", err)
	}
	st, err := os.Lstat(base)
	if err != nil {
		return "", fmt.Errorf("task rendezvous: %w", err)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !st.IsDir() || !ok || int(sys.Uid) != os.Getuid() || st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("task rendezvous: %s is not a folder of yours with mode 0700; remove it or set TMPDIR", base)
	}
	name := fmt.Sprintf("%s.%s.%s", t.JobID, t.StepID, t.Node)
	if t.Restart > 0 {
		name += fmt.Sprintf(".r%d", t.Restart) // a requeued job reuses its id and step numbers
	}
	dir := filepath.Join(base, name)
	if err := os.Mkdir(dir, 0o700); err != nil && !os.IsExist(err) {
		return "", fmt.Errorf("task rendezvous: %w", err)
	}
	if longest := filepath.Join(dir, "task-000000.sock"); len(longest) > eventsrv.MaxSocketPath {
		return "", fmt.Errorf("task rendezvous: %s is too long for a Unix socket (%d bytes, at most %d): set TMPDIR to a shorter folder",
			longest, len(longest), eventsrv.MaxSocketPath)
	}
	return dir, nil
}

func taskSocket(dir string, rank int) string {
	return filepath.Join(dir, fmt.Sprintf("task-%06d.sock", rank))
}

// The relay protocol: a relay sends a stream of JSON-encoded wireMsg on
// node.sock, Hello first and End last; the sampler answers every message
// with one byte once it has handed the message's rows to the trace writer,
// so a relay knows what it may forget. JSON rather than gob because gob
// cannot tell a pointer to zero from a nil pointer: a request_end with
// output_tokens 0, or an exit code 0, would arrive as absent.
type wireMsg struct {
	Hello  *wireHello
	Events []trace.Event
	Bad    []trace.BadEvent
	End    *wireEnd
}

type wireHello struct {
	Rank, LocalRank int
	PID             int
	LlemVersion     string
}

// wireEnd is how a relay task's command ended, with its socket's counts.
type wireEnd struct {
	Command trace.CommandInfo
	Events  trace.EventStats
	Error   string
}

const ackByte = 'k'
