package record

import (
	"os"

	"github.com/llem/llem/trace"
)

// NodeTasks joins a recording to the other tasks of a multi-node job that
// run on the same node (package record/slurm implements it for Slurm). The
// recorder samples the node's GPUs and runs its own task's command as
// usual; the other tasks run their commands themselves and send their
// events here. The recorder calls the methods in this order, each once.
type NodeTasks interface {
	// Describe adds the job's facts to meta.json before the recording starts.
	Describe(m *trace.Meta)
	// Relay starts delivering the other tasks' events, already stamped on
	// arrival by their own tasks, through emit and emitBad. Both may be
	// called from several goroutines and may block while the writer is busy.
	Relay(emit func([]trace.Event), emitBad func([]trace.BadEvent))
	// Await blocks, after this task's last cycle and before the idle phase
	// after it, until every other task of the node has ended its command
	// (so that the node's GPUs are sampled for as long as any task runs).
	// It returns false when a signal from sigs cut the wait short.
	Await(sigs <-chan os.Signal) bool
	// Close stops relaying (emit is not called after it returns) and
	// fills in the end-of-run parts of meta.json: m.Events still holds
	// this task's own event counts when it is called.
	Close(m *trace.Meta)
}
