// Package compare compares configurations of recorded runs, benchstat-style
// (`llem compare`): per metric, each configuration's mean with its BCa CI,
// the change of the mean against a baseline with a two-sample BCa bootstrap
// CI of the ratio of means, and a two-sided Mann-Whitney U test.
//
// Samples come from `llem analyze`'s own analysis of each run: per-cycle
// energy per output token, tokens/s, mean power and energy per request
// (the measured windows of a cycle summed), and per-request TTFT and TPOT.
// The U test follows benchstat's rules and limits; both it and the ratio
// interval are checked against scipy (gen_reference.py). docs/compare.md
// documents the statistics and their sources.
package compare
