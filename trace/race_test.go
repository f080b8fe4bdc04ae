//go:build race

package trace

// raceDetector is true under go test -race, which makes decoding ten times
// slower: long sweeps sample instead of covering everything.
const raceDetector = true
