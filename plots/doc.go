// Package plots draws llem's publication figures with gonum/plot: the
// timeline of one run (power from every source, temperature and SM clock
// on one time axis, with phases, cycles, the steady window, baselines and
// request starts), latency CDFs, efficiency with BCa intervals, the
// energy/throughput Pareto front of a sweep, and the distribution of
// steady-state power.
//
// Every number drawn is one that analyze computed (an analyze.Run from
// analyze.Open: its results, Efficiency, PowerTraces, PowerSamplesIn and
// per-request Latency); plots only draws, so a figure shows what `llem
// analyze` reports. Figures are written as PDF,
// SVG or PNG at a column width (3.5 in) or a page width (7 in), with
// fonts of at least 7 pt at that size, the Okabe-Ito palette, a unit on
// every axis and the legend outside the data. The same inputs give
// byte-identical files: nothing depends on the time, map order or the
// machine (a PDF's creation date is fixed; see Render).
//
// `llem plot` is the command line; docs/figures.md shows each kind.
package plots
