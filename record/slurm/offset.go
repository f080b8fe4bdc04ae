package slurm

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/llem/llem/trace"
)

// Clock offsets between nodes are measured the way NTP measures a server:
// the sampler of the step's first node (SLURM_NODEID 0) is the reference.
// It answers on a TCP port and writes where, with a random nonce, to
// manifest/clock-reference.json in the job directory. Every other sampler
// reads that file (which works when the output directory is shared, the
// usual case on a cluster), then sends probes: it notes its clock t0, the
// reference reads its clock ts, it notes t3 when the answer is back. The
// reference read ts at some instant when this node's clock was within
// [t0, t3], so this node's clock minus the reference's is
// (t0+t3)/2 - ts, give or take (t3-t0)/2, whatever the network does. The
// exchange with the shortest round trip is kept. The nonce makes sure the
// answer comes from this job's reference, not from a port reused by
// someone else.

// clockReferenceDoc is manifest/clock-reference.json.
type clockReferenceDoc struct {
	JobID     string   `json:"job_id"`
	StepID    string   `json:"step_id"`
	Node      string   `json:"node"`
	Addresses []string `json:"addresses"`
	Nonce     string   `json:"nonce"`
	WrittenNs int64    `json:"written_ns"`
}

// A probe is 16 bytes, nonce then sequence number; the answer is the
// same 16 bytes followed by the reference's clock, 8 bytes, big-endian ns.
const (
	probeLen  = 16
	answerLen = 24
	// exchanges per measurement; the shortest round trip wins.
	exchanges = 16
)

// clockReference is the reference node's answering end.
type clockReference struct {
	ln    net.Listener
	nonce [8]byte
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]bool
}

// serveClockReference listens on every interface and writes the reference
// file into the job directory.
func serveClockReference(jobDir string, t *Task) (*clockReference, error) {
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		return nil, fmt.Errorf("clock reference: %w", err)
	}
	r := &clockReference{ln: ln, conns: map[net.Conn]bool{}}
	if _, err := rand.Read(r.nonce[:]); err != nil {
		ln.Close()
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	doc := clockReferenceDoc{JobID: t.JobID, StepID: t.StepID, Node: t.Node,
		Addresses: advertised(port), Nonce: hex.EncodeToString(r.nonce[:]), WrittenNs: time.Now().UnixNano()}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		ln.Close()
		return nil, err
	}
	if err := writeAtomic(filepath.Join(jobDir, trace.ManifestDir, trace.ClockReferenceFile), append(b, '\n')); err != nil {
		ln.Close()
		return nil, fmt.Errorf("clock reference: %w", err)
	}
	r.wg.Add(1)
	go r.accept()
	return r, nil
}

// advertised lists the addresses other nodes may reach this one on:
// every interface's unicast address, loopback last (it only helps when
// the "nodes" share a host, as in a test cluster), at most 8.
func advertised(port int) []string {
	var out, loop []string
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLinkLocalUnicast() || ipn.IP.IsMulticast() {
			continue
		}
		hp := net.JoinHostPort(ipn.IP.String(), fmt.Sprint(port))
		if ipn.IP.IsLoopback() {
			loop = append(loop, hp)
		} else {
			out = append(out, hp)
		}
	}
	out = append(out, loop...)
	if len(out) == 0 {
		out = []string{net.JoinHostPort("127.0.0.1", fmt.Sprint(port))}
	}
	return out[:min(len(out), 8)]
}

func (r *clockReference) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		r.conns[c] = true
		r.mu.Unlock()
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.answer(c)
			r.mu.Lock()
			delete(r.conns, c)
			r.mu.Unlock()
			c.Close()
		}()
	}
}

// answer serves one prober: each probe gets the reference's clock, read
// as soon as the probe has arrived.
func (r *clockReference) answer(c net.Conn) {
	buf := make([]byte, answerLen)
	for {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, buf[:probeLen]); err != nil {
			return
		}
		ts := time.Now().UnixNano()
		if [8]byte(buf[:8]) != r.nonce {
			return
		}
		binary.BigEndian.PutUint64(buf[probeLen:], uint64(ts))
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

func (r *clockReference) close() {
	r.ln.Close()
	r.mu.Lock()
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// readClockReference waits up to wait for the reference file of this job
// step to appear in the job directory.
func readClockReference(ctx context.Context, jobDir string, t *Task, wait time.Duration) (*clockReferenceDoc, error) {
	path := filepath.Join(jobDir, trace.ManifestDir, trace.ClockReferenceFile)
	deadline := time.Now().Add(wait)
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			var doc clockReferenceDoc
			if err := json.Unmarshal(b, &doc); err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			if doc.JobID == t.JobID && doc.StepID == t.StepID {
				return &doc, nil
			}
			// Another step's file: ours may still come and replace it.
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no %s from node index 0 within %v: the output directory is not shared between the nodes, or node 0's llem did not start",
				trace.ClockReferenceFile, wait)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// measureOffset measures this node's clock against the reference's.
func measureOffset(ctx context.Context, doc *clockReferenceDoc, at string) (trace.ClockOffset, error) {
	nonce, err := hex.DecodeString(doc.Nonce)
	if err != nil || len(nonce) != 8 {
		return trace.ClockOffset{}, fmt.Errorf("%s: bad nonce %q", trace.ClockReferenceFile, doc.Nonce)
	}
	var errs []error
	for _, addr := range doc.Addresses {
		off, err := probeAddress(ctx, addr, [8]byte(nonce))
		if err == nil {
			off.At = at
			return off, nil
		}
		errs = append(errs, err)
	}
	return trace.ClockOffset{}, fmt.Errorf("reference node %s did not answer: %w", doc.Node, errors.Join(errs...))
}

func probeAddress(ctx context.Context, addr string, nonce [8]byte) (trace.ClockOffset, error) {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return trace.ClockOffset{}, err
	}
	defer c.Close()
	best := trace.ClockOffset{Address: addr, RoundTripNs: -1}
	req := make([]byte, probeLen)
	ans := make([]byte, answerLen)
	copy(req, nonce[:])
	for seq := range exchanges {
		binary.BigEndian.PutUint64(req[8:], uint64(seq))
		c.SetDeadline(time.Now().Add(time.Second))
		t0 := time.Now().UnixNano()
		if _, err := c.Write(req); err != nil {
			return trace.ClockOffset{}, fmt.Errorf("%s: %w", addr, err)
		}
		if _, err := io.ReadFull(c, ans); err != nil {
			return trace.ClockOffset{}, fmt.Errorf("%s: %w", addr, err)
		}
		t3 := time.Now().UnixNano()
		if [probeLen]byte(ans[:probeLen]) != [probeLen]byte(req) {
			return trace.ClockOffset{}, fmt.Errorf("%s: answered for another job (nonce or sequence differs)", addr)
		}
		ts := int64(binary.BigEndian.Uint64(ans[probeLen:]))
		if rtt := t3 - t0; best.RoundTripNs < 0 || rtt < best.RoundTripNs {
			best.RoundTripNs = rtt
			best.OffsetNs = t0 + rtt/2 - ts
			best.BoundNs = (rtt + 1) / 2
			best.TimestampNs = t3
		}
		best.Exchanges++
	}
	return best, nil
}

// writeAtomic writes a file whole under a temporary name and renames it,
// so a reader on another node sees the old file or the new one.
func writeAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
