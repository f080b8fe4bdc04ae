package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// An existing --out must be empty and the user's own, and not writable by
// every user: its owner could otherwise replace the run's files (issue 17:
// another user's empty directory had its events.sock replaced).
func TestOutDirMustBeTheUsers(t *testing.T) {
	base := t.TempDir()
	ww := filepath.Join(base, "world-writable")
	os.Mkdir(ww, 0o777)
	os.Chmod(ww, 0o777)
	r := llem(t, nil, "record", "--device", "sim", "--quiet", "--out", ww, "--", "true")
	if r.code != 1 || !strings.Contains(r.stderr, "--out: "+ww+" is writable by every user") {
		t.Errorf("world-writable --out: exit %d %s", r.code, r.stderr)
	}
	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o644)
	if r := llem(t, nil, "record", "--device", "sim", "--quiet", "--out", file, "--", "true"); r.code != 1 || !strings.Contains(r.stderr, "is not a directory") {
		t.Errorf("--out a file: exit %d %s", r.code, r.stderr)
	}
	empty := filepath.Join(base, "empty")
	os.Mkdir(empty, 0o755)
	if r := llem(t, nil, "record", "--device", "sim", "--quiet", "--out", empty, "--", "true"); r.code != 0 {
		t.Errorf("an empty directory of one's own is taken: exit %d %s", r.code, r.stderr)
	}
	if os.Getuid() != 0 {
		t.Skip("the directory of another user needs root to make (chown)")
	}
	other := filepath.Join(base, "other")
	os.Mkdir(other, 0o755)
	if err := os.Chown(other, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	r = llem(t, nil, "record", "--device", "sim", "--quiet", "--out", other, "--", "true")
	if r.code != 1 || !strings.Contains(r.stderr, "--out: "+other+" is owned by ") || !strings.Contains(r.stderr, "uid 65534") {
		t.Errorf("another user's --out: exit %d %s", r.code, r.stderr)
	}
	if entries, _ := os.ReadDir(other); len(entries) != 0 {
		t.Errorf("llem wrote into another user's directory: %v", entries)
	}
}

// The event socket lives in a directory only the user may enter, not in
// the run directory; another user cannot connect to it.
func TestEventSocketIsPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	probe := filepath.Join(t.TempDir(), "probe.sh")
	out := filepath.Join(t.TempDir(), "probe.out")
	// The command reports its socket's folder mode and owner, and (as root)
	// whether user nobody can connect to the socket.
	script := `#!/bin/sh
d=$(dirname "$LLEM_EVENTS")
stat -c '%a %u' "$d" > ` + out + `
if [ "$(id -u)" = 0 ] && command -v runuser >/dev/null && command -v python3 >/dev/null; then
  runuser -u nobody -- python3 -c 'import socket,sys
s=socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1]); s.sendall(b"{\"kind\":\"mark\",\"name\":\"intruder\"}\n"); print("connected")
except OSError as e:
    print("refused", e.errno)' "$LLEM_EVENTS" >> ` + out + ` 2>&1
fi
`
	os.WriteFile(probe, []byte(script), 0o755)
	r := llem(t, nil, "record", "--device", "sim", "--quiet", "--out", dir, "--", probe)
	if r.code != 0 {
		t.Fatalf("exit %d %s", r.code, r.stderr)
	}
	b, _ := os.ReadFile(out)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if want := "700 " + itoa(os.Getuid()); lines[0] != want {
		t.Errorf("socket folder mode and owner %q, want %q", lines[0], want)
	}
	m := readMeta(t, dir)
	if strings.HasPrefix(m.Events.Socket, dir) {
		t.Errorf("socket %s is in the run directory", m.Events.Socket)
	}
	if _, err := os.Stat(filepath.Dir(m.Events.Socket)); !os.IsNotExist(err) {
		t.Errorf("the socket's folder is left behind: %v", err)
	}
	if os.Getuid() != 0 {
		t.Skip("connecting as another user needs root (runuser)")
	}
	if _, err := exec.LookPath("runuser"); err != nil {
		t.Skip("no runuser")
	}
	if len(lines) < 2 || !strings.HasPrefix(lines[1], "refused") {
		t.Errorf("user nobody must not connect: %q", lines)
	}
	if s := info(t, dir); s.EventKinds["mark"] != 0 {
		t.Errorf("an intruder's event was recorded: %v", s.EventKinds)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
