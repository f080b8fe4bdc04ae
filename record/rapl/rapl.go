// Package rapl reads the host's RAPL energy counters (CPU package, DRAM,
// core, uncore, psys) from the Linux powercap interface:
// /sys/class/powercap/intel-rapl:N and its subzones intel-rapl:N:M, each
// with a name, a cumulative energy_uj counter and the max_energy_range_uj
// after which that counter wraps to 0. AMD processors expose the same
// interface (under intel-rapl names on most kernels, amd-rapl on some).
//
// The reader stores nothing and corrects nothing: it reports the raw
// counters, and the analysis unwraps them. The sysfs root is a parameter,
// as node_exporter's --path.sysfs, so that tests read fixture trees.
package rapl

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/llem/llem/trace"
)

// DefaultSysfs is the sysfs root read when none is given.
const DefaultSysfs = "/sys"

// Reasons no domain can be recorded (trace.HostEnergyInfo.Unavailable).
const (
	NoPowercap       = "no_powercap"
	NoRAPL           = "no_rapl"
	PermissionDenied = "permission_denied"
	ReadFailed       = "read_failed"
)

// zoneName matches the RAPL zones of powercap: intel-rapl:0 (a package or
// psys) and intel-rapl:0:2 (a subzone of it: core, uncore, dram). The
// intel-rapl-mmio zones are left out: they are a second interface to the
// same package counter (on client CPUs), and recording both would show
// the package's energy twice.
var zoneName = regexp.MustCompile(`^(intel|amd)-rapl:[0-9]+(:[0-9]+)?$`)

// Domain is one readable RAPL counter.
type Domain struct {
	trace.HostEnergyDomain
	path string // its energy_uj file
}

// Reader reads the counters of the domains Open found.
type Reader struct {
	Domains []Domain
}

// readFile is os.ReadFile, replaced by tests to make a file unreadable
// (root, which runs the tests here, can read a chmod 000 file).
var readFile = os.ReadFile

// Open lists the RAPL zones under sysfs/class/powercap and reads each
// once. It returns a Reader of the zones that could be read (nil when
// none), and the account for meta.json: the domains found, the zones that
// could not be read, and when none can, why, with the fix.
func Open(sysfs string) (*Reader, *trace.HostEnergyInfo) {
	if sysfs == "" {
		sysfs = DefaultSysfs
	}
	dir := filepath.Join(sysfs, "class", "powercap")
	info := &trace.HostEnergyInfo{Path: dir, Domains: []trace.HostEnergyDomain{}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		info.Unavailable = NoPowercap
		if errors.Is(err, fs.ErrNotExist) {
			info.Reason = fmt.Sprintf("%s does not exist: this kernel exposes no power capping interface "+
				"(a virtual machine, a container without the host's /sys, or not Linux)", dir)
		} else {
			info.Reason = fmt.Sprintf("%v", err)
		}
		return nil, info
	}
	var zones []string
	for _, e := range entries {
		if zoneName.MatchString(e.Name()) {
			zones = append(zones, e.Name())
		}
	}
	slices.SortFunc(zones, compareZones)
	if len(zones) == 0 {
		info.Unavailable = NoRAPL
		info.Reason = fmt.Sprintf("%s has no intel-rapl zones: the CPU or hypervisor exposes no RAPL counters, "+
			"or the driver is not loaded (modprobe intel_rapl_msr, on AMD too)", dir)
		return nil, info
	}
	r := &Reader{}
	denied := 0
	for _, z := range zones {
		zdir := filepath.Join(dir, z)
		name, err := readString(filepath.Join(zdir, "name"))
		if err != nil {
			info.Unreadable = append(info.Unreadable, trace.HostEnergyZoneError{Zone: z, Error: err.Error()})
			continue
		}
		if parent, _, sub := cutLast(z); sub {
			// A subzone's name (dram, core, uncore) repeats on every
			// socket: qualify it by its package's.
			pname, err := readString(filepath.Join(dir, parent, "name"))
			if err != nil {
				pname = parent
			}
			name = pname + "/" + name
		}
		maxUj, err := readUint(filepath.Join(zdir, "max_energy_range_uj"))
		if err != nil {
			info.Unreadable = append(info.Unreadable, trace.HostEnergyZoneError{Zone: z, Error: err.Error()})
			continue
		}
		d := Domain{HostEnergyDomain: trace.HostEnergyDomain{Zone: z, Name: name, MaxEnergyRangeUj: int64(maxUj)},
			path: filepath.Join(zdir, "energy_uj")}
		if _, err := readUint(d.path); err != nil {
			if errors.Is(err, fs.ErrPermission) {
				denied++
			}
			info.Unreadable = append(info.Unreadable, trace.HostEnergyZoneError{Zone: z, Error: err.Error()})
			continue
		}
		r.Domains = append(r.Domains, d)
		info.Domains = append(info.Domains, d.HostEnergyDomain)
	}
	if len(r.Domains) > 0 {
		return r, info
	}
	if denied > 0 {
		info.Unavailable = PermissionDenied
		info.Reason = fmt.Sprintf("the RAPL counters under %s are readable only by root (since Linux 5.10, for CVE-2020-8694): "+
			"record as root, or let this user read them until the next boot with "+
			"sudo chmod a+r %s/intel-rapl:*/energy_uj (a udev rule makes it last)", dir, dir)
	} else {
		info.Unavailable = ReadFailed
		info.Reason = fmt.Sprintf("no RAPL counter under %s could be read (see unreadable)", dir)
	}
	return nil, info
}

// Read reads every domain's counter into out (one value per domain, in
// Domains' order; reused when large enough). A domain whose read fails
// has ok[i] false.
func (r *Reader) Read(out []int64, ok []bool) ([]int64, []bool) {
	out, ok = out[:0], ok[:0]
	for _, d := range r.Domains {
		v, err := readUint(d.path)
		out = append(out, int64(v))
		ok = append(ok, err == nil)
	}
	return out, ok
}

// compareZones orders zones by their numbers: intel-rapl:0, :0:0, :0:1,
// :1, and :10 after :9.
func compareZones(a, b string) int {
	na, nb := zoneNumbers(a), zoneNumbers(b)
	if c := slices.Compare(na, nb); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

func zoneNumbers(z string) []int {
	parts := strings.Split(z, ":")
	var n []int
	for _, p := range parts[1:] {
		v, _ := strconv.Atoi(p)
		n = append(n, v)
	}
	return n
}

// cutLast splits "intel-rapl:0:2" into its parent "intel-rapl:0" and
// "2"; sub is false for a top-level zone.
func cutLast(z string) (parent, last string, sub bool) {
	if strings.Count(z, ":") < 2 {
		return "", "", false
	}
	i := strings.LastIndexByte(z, ':')
	return z[:i], z[i+1:], true
}

func readString(path string) (string, error) {
	b, err := readFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// readUint reads a file holding one decimal number.
func readUint(path string) (uint64, error) {
	b, err := readFile(path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 63)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}
