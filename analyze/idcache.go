package analyze

import "encoding/binary"

// idCache remembers the request ids of recent events, by a hash of their
// bytes, in front of the map of every id. A run's token rows (17.5 million
// in the 4 h synthetic run) name the few dozen requests in flight at a
// time, while the map holds every request of the run (110,000): its
// lookups missed the CPU's caches, 0.66 s of that run's 11.9 s of CPU. A
// slot holds one id; a miss (a new request, or two in flight that share a
// slot) falls back to the map, so the index found is the same either way.
type idCache [1 << idCacheBits]idEntry

const idCacheBits = 12

// idEntry is a request id as sent (raw), the task that sent it (hasTask
// false for a single-node run) and its index in Data.IDs, plus one (0 is
// an empty slot).
type idEntry struct {
	raw     string
	task    int32
	hasTask bool
	id1     int32
}

// slot is the entry for raw of task: its first and last eight bytes,
// length and task, mixed by multiplication, pick one of the slots.
func (c *idCache) slot(raw []byte, task int32, hasTask bool) *idEntry {
	var a, b uint64
	if len(raw) >= 8 {
		a = binary.LittleEndian.Uint64(raw)
		b = binary.LittleEndian.Uint64(raw[len(raw)-8:])
	} else {
		for i, ch := range raw {
			a |= uint64(ch) << (8 * i)
		}
	}
	h := a*0x9e3779b97f4a7c15 ^ b ^ uint64(len(raw))<<56 ^ uint64(uint32(task))<<24
	if hasTask {
		h ^= 1 << 63
	}
	return &c[(h*0xc2b2ae3d27d4eb4f)>>(64-idCacheBits)]
}

// get is the slot's index for raw of task, if the slot holds it.
func (e *idEntry) get(raw []byte, task int32, hasTask bool) (int32, bool) {
	if e.id1 == 0 || e.task != task || e.hasTask != hasTask || e.raw != string(raw) {
		return 0, false
	}
	return e.id1 - 1, true
}

// set makes the slot hold id for raw of task (raw a string that outlives
// the scan's batch: the end of the id's entry in Data.IDs).
func (e *idEntry) set(raw string, task int32, hasTask bool, id int32) {
	*e = idEntry{raw: raw, task: task, hasTask: hasTask, id1: id + 1}
}
