package record

import "github.com/llem/llem/trace"

// TruthSeriesReporter is implemented by simulated devices that can give
// their true cumulative energy tick by tick, written to the sim_truth
// table so that the analysis can score every window against the truth.
type TruthSeriesReporter interface {
	TruthSeries(startNs, endNs int64) []trace.SimTruthEnergy
}

// writeSimTruth writes the backend's true energy over the recording into
// the sim_truth table, when the backend knows it, and counts its rows in
// meta.json's recorder statistics.
func writeSimTruth(b Backend, dir string, m *trace.Meta, startNs, endNs int64) error {
	tr, ok := b.(TruthSeriesReporter)
	if !ok {
		return nil
	}
	w, err := trace.NewTableWriter[trace.SimTruthEnergy](dir, trace.TableSimTruth, m.RunID, nil)
	if err != nil {
		return err
	}
	rows := tr.TruthSeries(startNs, endNs)
	w.SetMaxRows(len(rows) + 1) // one segment, written at the end
	if err := w.Add(rows...); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if m.Recorder.Rows == nil {
		m.Recorder.Rows = map[string]int64{}
	}
	m.Recorder.Rows[trace.TableSimTruth] = int64(len(rows))
	return nil
}
