// Command goload is bench/recorder/event_load.py for llem's Go client
// (package events): token events at a fixed total rate from several
// clients, to measure what the recorder pays for them.
//
//	go build -o /tmp/goload ./bench/recorder/goload
//	llem record --device sim -- /tmp/goload RATE_PER_S SECONDS [CLIENTS]
//
// Each client (CLIENTS, default 8, each its own connection and goroutine)
// sends RATE/CLIENTS `token` events a second, one Tokens(id, 1) call per
// event (32 requests in turn), paced every 2 ms, as event_load.py's
// processes do. The clients hold lines for events.DefaultHold (100 ms);
// EVENT_HOLD=0 in the environment makes them write each event at once
// (EVENT_HOLD=S sets another hold, in seconds). It prints one JSON line,
// as event_load.py does: events sent, the process's CPU time and its CPU
// per event, and events lost. Its CPU is the whole process's, start-up
// and the pacing loop's wake-ups included (at 1,000 events/s most of
// it), not only the calls' as event_load.py counts.
package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/llem/llem/events"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "goload:", err)
		os.Exit(2)
	}
}

func run(args []string) error {
	if len(args) < 2 || len(args) > 3 {
		return fmt.Errorf("usage: goload RATE_PER_S SECONDS [CLIENTS]")
	}
	rate, err1 := strconv.ParseFloat(args[0], 64)
	seconds, err2 := strconv.ParseFloat(args[1], 64)
	clients := 8
	var err3 error
	if len(args) == 3 {
		clients, err3 = strconv.Atoi(args[2])
	}
	if err1 != nil || err2 != nil || err3 != nil || !(rate > 0) || !(seconds > 0) || clients < 1 {
		return fmt.Errorf("RATE_PER_S and SECONDS must be positive numbers, CLIENTS a positive integer: %q", args)
	}
	hold := events.DefaultHold
	if s := os.Getenv("EVENT_HOLD"); s != "" {
		h, err := strconv.ParseFloat(s, 64)
		if err != nil || h < 0 {
			return fmt.Errorf("EVENT_HOLD=%q: want seconds", s)
		}
		hold = time.Duration(h * float64(time.Second))
	}
	cpu0 := cpuSeconds()
	sent := make([]int, clients)
	lost := make([]int, clients)
	var wg sync.WaitGroup
	for k := range clients {
		ev, err := events.Dial()
		if err != nil {
			return err
		}
		if !ev.Connected() {
			return fmt.Errorf("%s is not set: run under `llem record`", events.EnvVar)
		}
		if err := ev.SetHold(hold); err != nil {
			return err
		}
		ids := make([]string, 32)
		for i := range ids {
			ids[i] = fmt.Sprintf("c%d-r%d", k, i)
		}
		wg.Go(func() {
			defer ev.Close()
			each := rate / float64(clients)
			start := time.Now()
			for {
				now := time.Since(start).Seconds()
				if now >= seconds {
					break
				}
				for due := int(now*each) - sent[k]; due > 0; due-- {
					if ev.Tokens(ids[sent[k]%32], 1) != nil {
						lost[k]++
					}
					sent[k]++
				}
				time.Sleep(2 * time.Millisecond)
			}
			if ev.Flush() != nil {
				lost[k]++
			}
		})
	}
	wg.Wait()
	cpu := cpuSeconds() - cpu0
	var n, l int
	for k := range clients {
		n, l = n+sent[k], l+lost[k]
	}
	out := map[string]any{"rate": rate, "seconds": seconds, "clients": clients, "hold_s": hold.Seconds(),
		"sent": n, "lost": l, "client_cpu_s": math.Round(cpu*1e3) / 1e3}
	if n > 0 {
		out["client_cpu_us_per_event"] = math.Round(cpu/float64(n)*1e8) / 100
	}
	b, _ := json.Marshal(out)
	fmt.Printf("event_load: %s\n", b)
	return nil
}

// cpuSeconds is the process's CPU time, user and system.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
