package serving

import (
	"cmp"
	"slices"
)

// Sorter packs token events that arrive in about time order (a recorder
// stamps them on arrival from several connections; a table may hold them
// in any order) into a TokenLog in the order a stable sort by stamp gives:
// equal stamps keep their order of arrival.
type Sorter = sorter[Token, TokenLog, *TokenLog]

// EventSorter is Sorter of request events, into an EventLog.
type EventSorter = sorter[Event, EventLog, *EventLog]

// packedLog is a log that a sorter packs records into, in time order.
type packedLog[T any, L any] interface {
	*L
	Append(T)
	Len() int
	last() int64  // the last stamp appended
	each(func(T)) // every record, in order
}

// sorter packs records into a log L in stable order of stamp. The last
// sorterTail records wait in a sorted tail, where a late one is
// inserted; one later than everything in the tail, earlier than what has
// been packed already, turns the sorter into a plain slice, stable-sorted
// at the end (the memory of unpacked records, for a trace whose order is
// far off).
type sorter[T interface{ stamp() int64 }, L any, P packedLog[T, L]] struct {
	log  L
	tail []T // sorted by stamp, stably
	all  []T // non-nil once the order was too far off for the tail
	// moved counts the records late ones were inserted before, added the
	// records added: a table in some other order (by request, say) would
	// insert every record deep in the tail, copying it again and again.
	moved, added int
}

// sorterTail bounds the tail: 64K tokens (1.5 MB) are a minute of a
// thousand tokens a second.
const sorterTail = 1 << 16

// Add takes the next record in order of arrival.
func (s *sorter[T, L, P]) Add(t T) {
	if s.all != nil {
		s.all = append(s.all, t)
		return
	}
	s.added++
	n := len(s.tail)
	ts := t.stamp()
	if n == cap(s.tail) {
		s.grow()
	}
	if n == 0 || ts >= s.tail[n-1].stamp() {
		s.tail = append(s.tail, t)
	} else {
		// After every record of the tail with a stamp at or before t's.
		k, _ := slices.BinarySearchFunc(s.tail, ts+1, func(a T, ts int64) int { return cmp.Compare(a.stamp(), ts) })
		s.moved += n - k
		if log := P(&s.log); k == 0 && log.Len() > 0 && ts < log.last() || s.moved > 64*s.added+sorterTail {
			s.unpack()
			s.all = append(s.all, t)
			return
		}
		s.tail = slices.Insert(s.tail, k, t)
	}
	if len(s.tail) >= 2*sorterTail {
		for _, x := range s.tail[:sorterTail] {
			P(&s.log).Append(x)
		}
		s.tail = append(s.tail[:0], s.tail[sorterTail:]...)
	}
}

// grow doubles the tail's room, up to the 2*sorterTail records it holds
// at most. append grows a large slice by a quarter at a time: the tail of
// a run's tokens was made and copied about 30 times on its way to 3 MB,
// each time in new memory the kernel faulted in page by page (the 1 h
// run's profile put 4% of its CPU in growing the tokens' and request
// events' tails; doubling them took about 1% off its CPU).
func (s *sorter[T, L, P]) grow() {
	tail := make([]T, len(s.tail), min(max(2*cap(s.tail), 256), 2*sorterTail))
	copy(tail, s.tail)
	s.tail = tail
}

// unpack turns the packed records and the tail back into one slice.
func (s *sorter[T, L, P]) unpack() {
	log := P(&s.log)
	s.all = make([]T, 0, log.Len()+len(s.tail)+sorterTail)
	log.each(func(t T) { s.all = append(s.all, t) })
	s.all = append(s.all, s.tail...)
	var empty L
	s.log, s.tail = empty, nil
}

// Log is every record added, in order. The sorter is not used after it.
func (s *sorter[T, L, P]) Log() *L {
	if s.all != nil {
		slices.SortStableFunc(s.all, func(a, b T) int { return cmp.Compare(a.stamp(), b.stamp()) })
		l := new(L)
		for _, t := range s.all {
			P(l).Append(t)
		}
		return l
	}
	for _, t := range s.tail {
		P(&s.log).Append(t)
	}
	s.tail = nil
	l := s.log
	return &l
}
