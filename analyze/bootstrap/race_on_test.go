//go:build race

package bootstrap

// raceEnabled lets slow statistical simulations skip under -race, which makes
// them ten times slower and which they do not need: they test numbers, and
// the concurrency they use is covered by the faster tests.
const raceEnabled = true
