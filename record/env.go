package record

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/llem/llem/trace"
)

// HostSnapshot reads the host facts a reviewer asks about: kernel, CPU
// model and frequency governor, and whether we run inside a container.
// Every read is best effort: a missing file leaves the field empty.
func HostSnapshot() trace.HostInfo {
	h := trace.HostInfo{OS: runtime.GOOS, Arch: runtime.GOARCH, NumCPU: runtime.NumCPU()}
	h.Hostname, _ = os.Hostname()
	h.Kernel = firstLine("/proc/sys/kernel/osrelease")
	if pretty := fileField("/etc/os-release", "=", "PRETTY_NAME"); pretty != "" {
		h.OS = pretty
	}
	h.CPUModel = fileField("/proc/cpuinfo", ":", "model name")
	h.CPUGovernor = firstLine("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
	h.InContainer, h.ContainerHint = detectContainer()
	return h
}

func firstLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(line)
}

// fileField returns the value of the first "key<sep>value" line of a file
// (/etc/os-release uses "=", /proc/cpuinfo ":"), trimmed of spaces and quotes.
func fileField(path, sep, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), sep)
		if ok && strings.TrimSpace(k) == key {
			return strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return ""
}

// detectContainer looks for the marks Docker, Podman, containerd and
// Kubernetes leave. Containers change what the GPU counters mean little,
// but a reviewer needs to know (audit MP-1).
func detectContainer() (bool, string) {
	for _, p := range []string{"/.dockerenv", "/run/.containerenv"} {
		if _, err := os.Stat(p); err == nil {
			return true, p
		}
	}
	if v := os.Getenv("container"); v != "" {
		return true, "env container=" + v
	}
	if b, err := os.ReadFile("/proc/1/cgroup"); err == nil {
		for _, mark := range []string{"docker", "kubepods", "containerd", "lxc", "podman"} {
			if strings.Contains(string(b), mark) {
				return true, "/proc/1/cgroup mentions " + mark
			}
		}
	}
	return false, ""
}

// Preflight returns the warnings the audit asks for before a measurement:
// settings that change what energy means, printed and stored with the run.
func Preflight(host trace.HostInfo, gpus []trace.GPUInfo) []trace.Warning {
	var ws []trace.Warning
	switch host.CPUGovernor {
	case "performance":
	case "":
		ws = append(ws, trace.Warning{Code: "cpu_governor_unknown",
			Message: "the CPU frequency governor could not be read; host-side timing may vary between runs"})
	default:
		ws = append(ws, trace.Warning{Code: "cpu_governor",
			Message: fmt.Sprintf("CPU frequency governor is %q, not \"performance\"; host-side latency may vary", host.CPUGovernor)})
	}
	for _, g := range gpus {
		idx := g.Index
		warn := func(code, format string, args ...any) {
			ws = append(ws, trace.Warning{Code: code, GPU: &idx, Message: fmt.Sprintf("GPU %d: ", idx) + fmt.Sprintf(format, args...)})
		}
		if g.PersistenceMode != nil && !*g.PersistenceMode {
			warn("persistence_off", "persistence mode is off; the driver may unload between runs and reset clocks and the energy counter")
		}
		if g.PowerLimitMw != nil && g.DefaultPowerLimitMw != nil && *g.PowerLimitMw != *g.DefaultPowerLimitMw {
			warn("power_limit", "power limit %.0f W differs from the default %.0f W; energy is not comparable with default-limit runs",
				float64(*g.PowerLimitMw)/1000, float64(*g.DefaultPowerLimitMw)/1000)
		}
		if g.MIGEnabled != nil && *g.MIGEnabled {
			warn("mig_on", "MIG is enabled; NVML reports whole-GPU power, not the power of one slice")
		}
		if g.ECCEnabled != nil && !*g.ECCEnabled {
			warn("ecc_off", "ECC is off; memory power and speed differ from ECC-on runs")
		}
		if len(g.Processes) > 0 {
			var names []string
			for _, p := range g.Processes {
				names = append(names, fmt.Sprintf("%d %s", p.PID, p.Name))
			}
			warn("other_processes", "%d other process(es) already use the GPU (%s); their work is in the measurement",
				len(g.Processes), strings.Join(names, ", "))
		}
	}
	return ws
}
