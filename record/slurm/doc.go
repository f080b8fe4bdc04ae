// Package slurm records multi-node jobs under Slurm: every task of a job
// step runs llem record with its own command, and exactly one task per
// node, the one with SLURM_LOCALID 0 (the sampler), samples the node's
// GPUs into an ordinary run directory, JOB_DIR/NODE. The node's other
// tasks (relays) run their commands on the same schedule and send their
// events to the sampler through a node-local rendezvous, so every task's
// LLEM_EVENTS works from its first line whichever task starts first. Each
// task writes its own part of the job manifest (trace.JobTask); samplers
// record their node's clock state and measure its offset to the step's
// first node. docs/multinode.md is the user's manual.
//
// The package touches Slurm only through the environment Slurm gives a
// task; it never calls Slurm's commands, so a job runs the same under any
// launcher that sets those variables.
package slurm
