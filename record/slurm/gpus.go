package slurm

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/llem/llem/record"
)

// gpuVariables name a task's GPUs, in the order llem trusts them:
//
//   - SLURM_STEP_GPUS: the GPUs of this step on this node, the same for
//     every task of the node, as the node's global GPU ids (Slurm says they
//     are not renumbered by a device cgroup). Not set for the batch script
//     or an interactive step.
//   - SLURM_JOB_GPUS: the job's GPUs on this node, in the same numbering.
//     Set in the batch script and inherited by srun; wider than the step
//     when several steps share the allocation, hence second.
//   - CUDA_VISIBLE_DEVICES: what CUDA shows this task. With --gpus-per-task
//     or --gpu-bind it is only this task's share of the node; with
//     ConstrainDevices it is renumbered from 0 inside the cgroup; since
//     Slurm 25.11 it may hold UUIDs; and the user may have set it. Last.
//
// Without any of them the node's GPUs are every GPU the driver shows
// (which, under a device cgroup, are the job's).
var gpuVariables = []string{"SLURM_STEP_GPUS", "SLURM_JOB_GPUS", "CUDA_VISIBLE_DEVICES"}

// GPUChoice is which of the node's GPUs the sampler records, and why.
type GPUChoice struct {
	// Indices are the driver's indices of the chosen GPUs, ascending.
	Indices []int
	// Source is the variable that chose them, "explicit" (the caller's
	// choice, Config.GPUs), or "all" (none set).
	Source string
	// Note says how the variable's ids were matched to the driver's GPUs.
	Note string
}

// SelectGPUs chooses the GPUs to sample among visible, the GPUs the device
// backend shows. An explicit choice (Config.GPUs) wins over every variable.
// Errors are *record.ConfigError of field GPUs: choosing explicitly is the
// way out of each.
func SelectGPUs(env map[string]string, explicit []int, visible []record.GPU) (GPUChoice, error) {
	if explicit != nil {
		return GPUChoice{Indices: sorted(explicit), Source: "explicit", Note: "chosen by the user"}, nil
	}
	all := make([]int, len(visible))
	for i, g := range visible {
		all[i] = g.Index()
	}
	for _, name := range gpuVariables {
		v := strings.TrimSpace(env[name])
		// Slurm writes NoDevFiles when a GRES has no device files, and
		// some sites export an empty or "none" list: no GPUs named here.
		if v == "" || v == "NoDevFiles" || strings.EqualFold(v, "none") {
			continue
		}
		c, err := matchGPUs(name, v, visible, all)
		if err != nil {
			return GPUChoice{}, err
		}
		return c, nil
	}
	return GPUChoice{Indices: all, Source: "all", Note: "no GPU variable set: every GPU the driver shows"}, nil
}

func matchGPUs(name, value string, visible []record.GPU, all []int) (GPUChoice, error) {
	items := strings.Split(value, ",")
	var ids []int
	var uuids []string
	for _, it := range items {
		it = strings.TrimSpace(it)
		if n, err := strconv.Atoi(it); err == nil && n >= 0 {
			ids = append(ids, n)
			continue
		}
		if strings.HasPrefix(it, "MIG-") {
			return GPUChoice{}, gpuError("%s=%s names a MIG device; llem records whole GPUs (NVML reports whole-GPU power): choose the GPUs explicitly", name, value)
		}
		if strings.HasPrefix(it, "GPU-") {
			uuids = append(uuids, it)
			continue
		}
		return GPUChoice{}, gpuError("%s=%s: %q is neither a GPU index nor a GPU UUID", name, value, it)
	}
	if len(uuids) > 0 && len(ids) > 0 {
		return GPUChoice{}, gpuError("%s=%s mixes indices and UUIDs", name, value)
	}
	if len(uuids) > 0 {
		return matchUUIDs(name, value, uuids, visible)
	}
	ids = sorted(ids)
	if len(slices.Compact(slices.Clone(ids))) != len(ids) {
		return GPUChoice{}, gpuError("%s=%s names a GPU twice", name, value)
	}
	shown := map[int]bool{}
	for _, i := range all {
		shown[i] = true
	}
	missing := 0
	for _, i := range ids {
		if !shown[i] {
			missing++
		}
	}
	switch {
	case missing == 0:
		return GPUChoice{Indices: ids, Source: name, Note: "ids taken as the driver's GPU indices"}, nil
	case len(all) == len(ids):
		// A device cgroup hides the GPUs the job was not given: the driver
		// shows exactly the job's GPUs, numbered from 0.
		return GPUChoice{Indices: all, Source: name,
			Note: fmt.Sprintf("the driver shows exactly the %d GPU(s) named (a device cgroup hides the others): all of them", len(all))}, nil
	}
	return GPUChoice{}, gpuError("%s=%s: the driver shows GPUs %s, which do not match; choose the GPUs explicitly",
		name, value, intList(all))
}

// matchUUIDs finds GPUs by UUID; like CUDA, a unique prefix is enough.
func matchUUIDs(name, value string, uuids []string, visible []record.GPU) (GPUChoice, error) {
	var out []int
	for _, u := range uuids {
		found := -1
		for _, g := range visible {
			info, err := g.Info()
			if err != nil || info.UUID == "" || !strings.HasPrefix(info.UUID, u) {
				continue
			}
			if found >= 0 {
				return GPUChoice{}, gpuError("%s=%s: %s matches more than one GPU", name, value, u)
			}
			found = g.Index()
		}
		if found < 0 {
			return GPUChoice{}, gpuError("%s=%s: no GPU the driver shows has UUID %s", name, value, u)
		}
		if slices.Contains(out, found) {
			return GPUChoice{}, gpuError("%s=%s names GPU %d twice", name, value, found)
		}
		out = append(out, found)
	}
	return GPUChoice{Indices: sorted(out), Source: name, Note: "matched by UUID"}, nil
}

func sorted(xs []int) []int {
	out := slices.Clone(xs)
	slices.Sort(out)
	return out
}

func intList(xs []int) string {
	if len(xs) == 0 {
		return "(none)"
	}
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

func gpuError(format string, args ...any) error {
	return &record.ConfigError{Field: "GPUs", Msg: fmt.Sprintf(format, args...)}
}
