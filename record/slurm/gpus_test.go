package slurm

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/llem/llem/record"
	"github.com/llem/llem/record/sim"
)

func simGPUs(t *testing.T, n int) []record.GPU {
	t.Helper()
	return sim.New(sim.Options{GPUs: n, Seed: 3}).GPUs()
}

func TestSelectGPUsOrder(t *testing.T) {
	four := simGPUs(t, 4)
	for _, tc := range []struct {
		name     string
		env      map[string]string
		explicit []int
		want     []int
		source   string
	}{
		{"step wins over job and CUDA", map[string]string{"SLURM_STEP_GPUS": "2,3", "SLURM_JOB_GPUS": "0,1,2,3", "CUDA_VISIBLE_DEVICES": "0"},
			nil, []int{2, 3}, "SLURM_STEP_GPUS"},
		{"job when the step names none", map[string]string{"SLURM_JOB_GPUS": "3,1", "CUDA_VISIBLE_DEVICES": "0"},
			nil, []int{1, 3}, "SLURM_JOB_GPUS"},
		{"CUDA last", map[string]string{"CUDA_VISIBLE_DEVICES": "1"}, nil, []int{1}, "CUDA_VISIBLE_DEVICES"},
		{"NoDevFiles names nothing", map[string]string{"CUDA_VISIBLE_DEVICES": "NoDevFiles"}, nil, []int{0, 1, 2, 3}, "all"},
		{"none set: all", nil, nil, []int{0, 1, 2, 3}, "all"},
		{"an explicit choice wins over everything", map[string]string{"SLURM_STEP_GPUS": "2,3"}, []int{1, 0}, []int{0, 1}, "explicit"},
	} {
		got, err := SelectGPUs(tc.env, tc.explicit, four)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !reflect.DeepEqual(got.Indices, tc.want) || got.Source != tc.source {
			t.Errorf("%s: got %v from %s, want %v from %s", tc.name, got.Indices, got.Source, tc.want, tc.source)
		}
	}
}

// Under a device cgroup the driver shows only the job's GPUs, numbered from
// 0, while Slurm's ids stay global: the two counts agree, the ids do not.
func TestSelectGPUsUnderDeviceCgroup(t *testing.T) {
	got, err := SelectGPUs(map[string]string{"SLURM_STEP_GPUS": "4,5"}, nil, simGPUs(t, 2))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Indices, []int{0, 1}) || !strings.Contains(got.Note, "device cgroup") {
		t.Fatalf("got %+v", got)
	}
}

func TestSelectGPUsByUUID(t *testing.T) {
	gpus := simGPUs(t, 3)
	info, err := gpus[2].Info()
	if err != nil || !strings.HasPrefix(info.UUID, "GPU-") {
		t.Fatalf("sim GPU 2 UUID %q, %v", info.UUID, err)
	}
	got, err := SelectGPUs(map[string]string{"CUDA_VISIBLE_DEVICES": info.UUID[:12]}, nil, gpus)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Indices, []int{2}) || got.Note != "matched by UUID" {
		t.Fatalf("got %+v", got)
	}
}

func TestSelectGPUsErrors(t *testing.T) {
	four := simGPUs(t, 4)
	for value, want := range map[string]string{
		"4,5,6":             "the driver shows GPUs 0,1,2,3, which do not match; choose the GPUs explicitly",
		"1,1":               "names a GPU twice",
		"MIG-1234":          "MIG device",
		"gpu0":              `"gpu0" is neither a GPU index nor a GPU UUID`,
		"0,GPU-ab":          "mixes indices and UUIDs",
		"GPU-00000000-dead": "no GPU the driver shows has UUID GPU-00000000-dead",
		"GPU-":              "matches more than one GPU",
	} {
		_, err := SelectGPUs(map[string]string{"SLURM_STEP_GPUS": value}, nil, four)
		var ce *record.ConfigError
		if !errors.As(err, &ce) || ce.Field != "GPUs" || !strings.Contains(ce.Msg, want) || !strings.Contains(ce.Msg, "SLURM_STEP_GPUS="+value) {
			t.Errorf("SLURM_STEP_GPUS=%s: error %v, want a GPUs setting error naming the variable and containing %q", value, err, want)
		}
	}
}
