package analyze

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/llem/llem/trace"
)

// Nodes stamp on their own clocks. Each sampler measured its node's clock
// offset to the reference node's at the start and at the end, true within
// a bound (docs/multinode.md, "Clocks"); a node's timestamps are put on
// the reference's clock by subtracting the offset, interpolated between
// the two measurements. What is left is the node's clock error: the
// measurement's bound, plus how far the node's sample stamps (the wall
// clock at the start, advanced by the monotonic clock) moved from the wall
// clock the offsets were measured on (meta.json clock.drift_ns). Without
// an offset, two synchronised clocks differ by at most the sum of their
// maximum errors (adjtimex); without that either, nothing bounds it.

// setClocks finds the reference node and how each node's clock is put on
// its clock.
func (j *Job) setClocks(runs []nodeRun) {
	for _, r := range runs {
		if cs := r.node.Meta.ClockSync; cs != nil && cs.ReferenceNode != "" && j.Reference == "" {
			j.Reference = cs.ReferenceNode
		}
	}
	for _, n := range j.Manifest.ByNode {
		if n.Index == 0 && j.Reference == "" {
			j.Reference = n.Name
		}
	}
	if j.Reference == "" {
		j.Reference = runs[0].node.Name
	}
	var ref *trace.Meta
	for _, r := range runs {
		if r.node.Name == j.Reference {
			ref = r.node.Meta
		}
	}
	refMax, refDrift := math.NaN(), 0.0 // an absent reference has no stamps of its own to drift
	if ref != nil {
		refMax, refDrift = maxErrorNs(ref), math.Abs(float64(ref.Clock.DriftNs))
	}
	for _, r := range runs {
		r.node.Clock = nodeClock(r.node.Meta, r.node.Name == j.Reference, j.Reference, refMax, refDrift)
	}
}

// nodeClock is how a node's clock is put on the reference's, and how well.
func nodeClock(m *trace.Meta, isRef bool, ref string, refMaxNs, refDriftNs float64) NodeClock {
	if isRef {
		return NodeClock{Source: ClockReference, Note: "the reference: its clock is the job's"}
	}
	drift := math.Abs(float64(m.Clock.DriftNs)) + refDriftNs
	cs := m.ClockSync
	if cs != nil && len(cs.Offsets) > 0 {
		offs := slices.Clone(cs.Offsets)
		slices.SortStableFunc(offs, func(a, b trace.ClockOffset) int { return cmp.Compare(a.TimestampNs, b.TimestampNs) })
		var bound float64
		var parts []string
		for _, o := range offs {
			bound = max(bound, float64(o.BoundNs))
			parts = append(parts, fmt.Sprintf("%+.3f ms within %.3f ms at the %s", float64(o.OffsetNs)/1e6, float64(o.BoundNs)/1e6, o.At))
		}
		note := fmt.Sprintf("offset to %s %s", ref, strings.Join(parts, ", "))
		if len(offs) == 1 {
			note += "; measured once, so its drift during the run is not in the bound"
		}
		return NodeClock{Source: ClockMeasured, Offsets: offs, ErrorNs: bound + drift, Note: note}
	}
	note := "no offset to " + ref + " measured"
	if cs != nil && cs.OffsetNote != "" {
		note += " (" + cs.OffsetNote + ")"
	}
	if own := maxErrorNs(m); !math.IsNaN(own) && !math.IsNaN(refMaxNs) {
		return NodeClock{Source: ClockMaxError, ErrorNs: own + refMaxNs + drift,
			Note: note + fmt.Sprintf("; both clocks synchronised, within their maximum errors (%.3f ms and %.3f ms)", own/1e6, refMaxNs/1e6)}
	}
	return NodeClock{Source: ClockUnknown, ErrorNs: math.NaN(),
		Note: note + "; this node's or the reference's clock is not synchronised (or its state was not read), so nothing bounds their difference"}
}

// maxErrorNs is the larger of the kernel's maximum clock errors at the
// start and end of a node's run; NaN unless both say the clock is
// synchronised (an unsynchronised clock's maximum error is no bound).
func maxErrorNs(m *trace.Meta) float64 {
	if m.ClockSync == nil {
		return math.NaN()
	}
	var e float64
	for _, k := range []*trace.KernelClock{m.ClockSync.Start, m.ClockSync.End} {
		if k == nil || k.Error != "" || !k.Synced {
			return math.NaN()
		}
		e = max(e, float64(k.MaxErrorUs)*1000)
	}
	return e
}

// offsetAt is the node's clock minus the reference's at t (the node's
// clock): linear between the first and last measurement, held before and
// after them, 0 when none was measured.
func (c NodeClock) offsetAt(t int64) int64 {
	o := c.Offsets
	if len(o) == 0 {
		return 0
	}
	a, b := o[0], o[len(o)-1]
	switch {
	case t <= a.TimestampNs || b.TimestampNs <= a.TimestampNs:
		return a.OffsetNs
	case t >= b.TimestampNs:
		return b.OffsetNs
	}
	f := float64(t-a.TimestampNs) / float64(b.TimestampNs-a.TimestampNs)
	return a.OffsetNs + int64(math.Round(f*float64(b.OffsetNs-a.OffsetNs)))
}

// toReference is a time stamped on the node's clock, on the reference's.
func (c NodeClock) toReference(t int64) int64 { return t - c.offsetAt(t) }

// MisalignmentNs bounds how far apart two nodes' clocks can be after the
// correction, so how far a window marked on one node can be misplaced on
// another's GPUs: the two largest clock errors (the reference's is 0). 0
// for one node; NaN when a node's error is unknown.
func (j *Job) MisalignmentNs() float64 {
	errs := make([]float64, 0, len(j.Nodes))
	for _, n := range j.Nodes {
		if math.IsNaN(n.Clock.ErrorNs) {
			return math.NaN()
		}
		errs = append(errs, n.Clock.ErrorNs)
	}
	if len(errs) < 2 {
		return 0
	}
	slices.Sort(errs)
	return errs[len(errs)-1] + errs[len(errs)-2]
}

// windowNode is the node on whose clock w's edges were marked: the cycle
// node for cycles and the recorder's phases, the marking task's node for
// a client's phase; "" for the reference clock itself (the run, spans in
// seconds, steady windows found in the summed power).
func (j *Job) windowNode(w Window) string {
	switch w.Kind {
	case KindCycle:
		return j.CycleNode
	case KindPhase, KindUser:
		if u, err := parseUserWindow(w.Name); w.Kind == KindUser && err == nil && u.phase == "" {
			return ""
		}
		if t, ok := j.PhaseTasks[w.Name]; ok {
			return j.taskNode[t]
		}
		return j.CycleNode
	}
	return ""
}

// edgeErrorNs bounds how far w's edges can be misplaced on node n's GPUs:
// 0 on the node that marked them, else both nodes' clock errors.
func (j *Job) edgeErrorNs(w Window, n *JobNode) float64 {
	src := j.windowNode(w)
	if src == n.Name {
		return 0
	}
	e := n.Clock.ErrorNs
	if s := j.node(src); s != nil {
		e += s.Clock.ErrorNs
	}
	return e
}

// clockTerms are the half-widths (J) of the energy a misplaced window
// edge moves, one per node and edge: a node's GPUs share its clock, so
// their power adds up before the term (a whole node's edge moves
// together); nodes' errors are independent. A window edge off by e moves
// the power there times e of energy. ok is false when some node's error
// is unknown.
func (c *runCtx) clockTerms(w Window) (terms []float64, ok bool) {
	j := c.d.Job
	ok = true
	for _, n := range j.Nodes {
		e := j.edgeErrorNs(w, n)
		if math.IsNaN(e) {
			ok = false
			continue
		}
		if e <= 0 {
			continue
		}
		for _, edge := range []int64{w.StartNs, w.EndNs} {
			var p float64
			for _, gi := range n.GPUs {
				tp := c.pts[gi]
				at := edge + tp.timing.LagNs
				if m := tp.maxIn(at-int64(e), at+int64(e)); !math.IsNaN(m) {
					p += m
				}
			}
			terms = append(terms, p*e/1e9)
		}
	}
	return terms, ok
}
