//go:build !race

package eventsrv

const raceEnabled = false
