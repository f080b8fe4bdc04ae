package slurm

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/llem/llem/trace"
)

// readKernelClock reads the kernel's clock discipline with adjtimex(2) in
// read-only mode (modes 0, no privilege needed): whether the clock is
// synchronised and the error bounds the NTP daemon (chrony, ntpd,
// systemd-timesyncd) last gave the kernel.
func readKernelClock() *trace.KernelClock {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	k := &trace.KernelClock{TimestampNs: time.Now().UnixNano()}
	if err != nil {
		k.Error = "adjtimex: " + err.Error()
		return k
	}
	k.State = state
	k.Status = int64(tx.Status)
	k.Synced = state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0
	k.EstErrorUs = tx.Esterror
	k.MaxErrorUs = tx.Maxerror
	k.OffsetNs = tx.Offset
	if tx.Status&unix.STA_NANO == 0 {
		k.OffsetNs *= 1000 // microseconds unless STA_NANO
	}
	k.FreqPPM = float64(tx.Freq) / 65536 // ppm with a 16-bit fraction
	return k
}

// probeTimeout bounds each clock-daemon query: a hung daemon must not
// delay the recording.
const probeTimeout = 2 * time.Second

// maxProbeOutput bounds what is kept of a query's output.
const maxProbeOutput = 4096

// probe runs a clock daemon's status command and returns its output, or
// "" when the program is not installed. A failing command's output (and
// error) is kept: "506 Cannot talk to daemon" is worth knowing.
func probe(name string, args ...string) string {
	path, err := exec.LookPath(name)
	if err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	s := out.String()
	if len(s) > maxProbeOutput {
		s = s[:maxProbeOutput] + "\n[truncated]"
	}
	if err != nil {
		s += "\n[" + name + ": " + err.Error() + "]"
	}
	return strings.TrimSpace(s)
}

// clockAtStart is the node's clock state when the recording starts.
func clockAtStart() *trace.ClockSync {
	return &trace.ClockSync{
		Start:  readKernelClock(),
		Chrony: probe("chronyc", "-n", "tracking"),
		NTPQ:   probe("ntpq", "-pn"),
	}
}
