//go:build race

package eventsrv

// raceEnabled shortens the flood test, which the race detector slows tenfold.
const raceEnabled = true
