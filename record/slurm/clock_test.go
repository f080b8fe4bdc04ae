package slurm

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestReadKernelClock(t *testing.T) {
	k := readKernelClock()
	if k.Error != "" {
		t.Fatalf("adjtimex: %s", k.Error)
	}
	// synced must follow the kernel's own flags, whatever this host's state.
	want := k.State != unix.TIME_ERROR && k.Status&unix.STA_UNSYNC == 0
	if k.Synced != want || k.MaxErrorUs < 0 || k.EstErrorUs < 0 {
		t.Fatalf("%+v", k)
	}
}

func TestProbe(t *testing.T) {
	if out := probe("llem-no-such-program"); out != "" {
		t.Fatalf("a missing program gave %q", out)
	}
	if out := probe("sh", "-c", "echo 506 Cannot talk to daemon; exit 1"); !strings.Contains(out, "506 Cannot talk") ||
		!strings.Contains(out, "exit status 1") {
		t.Fatalf("a failing program's output and error must be kept: %q", out)
	}
}

// Both ends read the same clock here, so the true offset is 0 and must
// lie within the bound; the bound is half the best round trip.
func TestOffsetAgainstReference(t *testing.T) {
	jobDir := t.TempDir()
	task := &Task{JobID: "9", StepID: "1", Node: "n1"}
	ref, err := serveClockReference(jobDir, task)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.close()
	other := &Task{JobID: "9", StepID: "1", Node: "n2", NodeIndex: 1}
	doc, err := readClockReference(context.Background(), jobDir, other, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if doc.Node != "n1" || len(doc.Addresses) == 0 {
		t.Fatalf("reference %+v", doc)
	}
	off, err := measureOffset(context.Background(), doc, "start")
	if err != nil {
		t.Fatal(err)
	}
	if off.Exchanges != exchanges || off.RoundTripNs <= 0 || off.BoundNs != (off.RoundTripNs+1)/2 {
		t.Fatalf("%+v", off)
	}
	if abs(off.OffsetNs) > off.BoundNs {
		t.Fatalf("offset %d ns outside its bound %d ns against the same clock", off.OffsetNs, off.BoundNs)
	}
	if off.BoundNs > int64(50*time.Millisecond) {
		t.Fatalf("bound %v over loopback", time.Duration(off.BoundNs))
	}
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// An answer from a server that is not this job's reference (a port
// reused by another process) is refused.
func TestOffsetRefusesAnotherJobsAnswer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, answerLen)
		if _, err := io.ReadFull(c, buf[:probeLen]); err != nil {
			return
		}
		buf[0] ^= 0xff // another nonce
		binary.BigEndian.PutUint64(buf[probeLen:], uint64(time.Now().UnixNano()))
		c.Write(buf)
	}()
	doc := &clockReferenceDoc{Node: "n1", Addresses: []string{ln.Addr().String()}, Nonce: hex.EncodeToString([]byte("12345678"))}
	if _, err := measureOffset(context.Background(), doc, "start"); err == nil || !strings.Contains(err.Error(), "another job") {
		t.Fatalf("err = %v", err)
	}
}

func TestNoReferenceWhenOutputNotShared(t *testing.T) {
	task := &Task{JobID: "9", StepID: "1", Node: "n2", NodeIndex: 1}
	_, err := readClockReference(context.Background(), t.TempDir(), task, 200*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "not shared") {
		t.Fatalf("err = %v", err)
	}
}
