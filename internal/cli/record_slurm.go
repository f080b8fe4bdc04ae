package cli

import (
	"context"
	"fmt"
	"os"

	ucli "github.com/urfave/cli/v2"

	"github.com/llem/llem/record"
	"github.com/llem/llem/record/slurm"
)

// runRecordJob records one task of a Slurm job step (docs/multinode.md):
// the node's sampler (SLURM_LOCALID 0) samples the node's GPUs into
// JOB_DIR/NODE; every other task runs its command and relays its events.
func runRecordJob(c *ucli.Context, cfg record.Config, task *slurm.Task) error {
	pattern := c.String("out")
	if pattern == "" {
		pattern = slurm.DefaultOut
	}
	jobDir, err := task.ExpandOut(pattern)
	if err != nil {
		return usagef("%v", recordFlagError(err))
	}
	opts := slurm.Options{LlemVersion: cfg.LlemVersion, Log: cfg.Log}
	if !task.Sampler() {
		code, err := slurm.RunRelay(context.Background(), task, jobDir, cfg, opts)
		if err != nil {
			return recordFlagError(err)
		}
		if code != 0 {
			return exitError{code}
		}
		return nil
	}

	node, err := slurm.StartNode(task, jobDir, opts)
	if err != nil {
		return recordFlagError(err)
	}
	rank := int32(task.Rank)
	cfg.OutDir, cfg.Task, cfg.Node = node.RunDir(), &rank, node
	res, err := recordNode(c, &cfg, task, node)
	if ferr := node.Finish(res, err); ferr != nil && err == nil {
		err = ferr
	}
	if err != nil {
		return recordFlagError(err)
	}
	if !c.Bool("quiet") {
		fmt.Fprintf(c.App.ErrWriter, "llem: node %s of job %s.%s written to %s (%s); the job's manifest is in %s\n",
			task.Node, task.JobID, task.StepID, res.Dir, res.Meta.Status, jobDir)
	}
	if res.ExitCode != 0 {
		return exitError{res.ExitCode}
	}
	return nil
}

// recordNode opens the device, picks the node's GPUs and records.
func recordNode(c *ucli.Context, cfg *record.Config, task *slurm.Task, node *slurm.Node) (*record.Result, error) {
	explicit := cfg.GPUs
	// Only the node's sampler serves metrics: it is the one recording the GPUs.
	var err error
	if cfg.Metrics, err = listenMetrics(c, cfg.Log); err != nil {
		return nil, err
	}
	if cfg.Metrics != nil {
		defer cfg.Metrics.Close() // Record closes it too; this is for the errors before it
	}
	backend, err := openBackend(c, cfg)
	if err != nil {
		return nil, err
	}
	defer backend.Close()
	choice, err := slurm.SelectGPUs(task.GPUEnv, explicit, backend.GPUs())
	if err != nil {
		return nil, err
	}
	node.SetGPUs(choice)
	cfg.GPUs, cfg.Backend = choice.Indices, backend
	fmt.Fprintf(cfg.Log, "llem: node %s: sampling GPU(s) %v (%s: %s)\n", task.Node, choice.Indices, choice.Source, choice.Note)
	if !c.Bool("quiet") && isTerminal(os.Stderr) && c.App.ErrWriter == os.Stderr {
		cfg.Status = os.Stderr
	}
	return record.Record(context.Background(), *cfg)
}
