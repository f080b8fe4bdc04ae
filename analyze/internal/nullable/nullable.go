// Package nullable carries floats through JSON, which has no NaN: a value
// that is not a number (no interval, an undefined rate) is written as null
// and read back as NaN.
package nullable

import "math"

// Ptr is nil for NaN and the infinities, else a pointer to v.
func Ptr(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// Value is NaN for nil, else *p.
func Value(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}
