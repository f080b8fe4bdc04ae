package analyze

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/llem/llem/analyze/serving"

	"github.com/llem/llem/trace"
)

// GPU holds one GPU's samples, field by field, read in analysis units.
// Only what the methodology uses is kept, each field as Samples: plain
// columns for a short run, packed (and beyond SamplesInMemory on disk)
// for a long one, so that a long run fits in little memory while every
// table is streamed segment by segment.
type GPU struct {
	// Index is the driver's index of the GPU in a run; in a job (LoadJob)
	// the GPU's position in the job, and NodeGPU the driver's index on
	// its node, Node that node's name.
	Index   int
	Node    string
	NodeGPU int
	Info    *trace.GPUInfo // nil when meta.json does not describe this GPU

	Energy       []trace.EnergyRead // counter reads, as stored
	DriverPower  Samples            // W, the driver's ~50 Hz buffer
	InstantPower Samples            // W, FI_DEV_POWER_INSTANT
	AveragePower Samples            // W, nvmlDeviceGetPowerUsage (1 s average)
	Temperature  Samples            // C
	SMClock      Samples            // MHz
	Util         Samples            // GPU utilisation, %
	// Truth is a simulated GPU's true cumulative energy (J) from the
	// sim_truth table, linear between rows; empty for real GPUs.
	Truth Samples
	// Reasons is the clock-event-reason bitmask (read with RawRange).
	Reasons Samples
}

// Data is a run loaded for analysis.
type Data struct {
	Run    *trace.Run
	GPUs   []*GPU        // by ascending index
	Events []trace.Event // every event but token and request events, sorted by TimestampNs (stable)
	// RequestEvents are the request_start, first_token and request_end
	// events, packed, sorted by TimestampNs (stable); their Req index IDs.
	RequestEvents *serving.EventLog
	Tokens        *serving.TokenLog // token events, packed, sorted by TimestampNs (stable)
	IDs           []string          // the request ids Tokens and RequestEvents refer to; nil once New has built the requests
	Bad           int               // rows in bad_events
	Origin        int64             // ns: the first sample of any GPU table; start_s counts from here
	End           int64             // ns: the last sample of any GPU table
	Notes         []trace.Warning   // problems found while loading (unsorted rows, ...)
	// Job is set when the data are a multi-node job's (LoadJob): its
	// nodes, tasks and clocks. Every timestamp is then on the reference
	// node's clock.
	Job *Job
	// Host are the host's RAPL energy domains (the host_energy table), in
	// meta.json's order; empty for a run without it, and for a job.
	Host []*HostDomain

	// requestTasks: for events that carry a task (a job's), the tasks
	// that started each request id as sent (ids are kept apart by task).
	requestTasks map[string][]int32
}

// Label is how messages name the GPU: "GPU 0", or in a job "n2 GPU 0".
func (g *GPU) Label() string {
	if g.Node != "" {
		return fmt.Sprintf("%s GPU %d", g.Node, g.NodeGPU)
	}
	return fmt.Sprintf("GPU %d", g.Index)
}

// batchRows is how many rows a table scan hands over at a time.
const batchRows = 16384

// Load opens a run directory and reads every table into columns. A run
// whose recorder was killed loads like any other: every complete segment
// is read. A job directory (trace.IsJobDir) is loaded as one experiment:
// LoadJob.
func Load(dir string) (*Data, error) {
	return load(dir, nil)
}

// load is Load, calling onRead (when not nil) with each segment's size as
// it is read.
func load(dir string, onRead func(int64)) (*Data, error) {
	if trace.IsJobDir(dir) {
		return loadJob(dir, onRead)
	}
	d, err := loadRun(dir, onRead)
	if err != nil {
		return nil, err
	}
	d.noteSharedRequests()
	return d, nil
}

// loadRun reads one run directory.
func loadRun(dir string, onRead func(int64)) (*Data, error) {
	run, err := trace.Open(dir)
	if err != nil {
		return nil, err
	}
	run.OnRead = onRead
	d := &Data{Run: run}
	rows := run.Meta.Recorder.Rows
	n := rows[trace.TableDriverPower] + 6*rows[trace.TableState]
	l := &loader{d: d, byIndex: map[int]*GPU{}, store: newSampleStore(), pack: n == 0 || n > PackSamplesAbove}
	for k := range run.Meta.GPUs {
		l.gpu(int32(run.Meta.GPUs[k].Index))
	}
	// Every table is read by column (trace.ScanColumns): no row structs,
	// no pointer per optional field.
	// The events (most rows of a serving run) fill other fields of Data
	// than the GPU tables: they are read beside them, and a run loads in
	// the time of the larger part on two cores.
	var evErr error
	var wg sync.WaitGroup
	wg.Go(func() { evErr = d.loadEvents() })
	err = l.readTables([]string{trace.TableEnergy, trace.TableDriverPower, trace.TableState}, l.energy, l.driverPower, l.state)
	wg.Wait()
	if err == nil && evErr != nil {
		err = fmt.Errorf("%s table: %w", trace.TableEvents, evErr)
	}
	if err == nil {
		err = l.readTables([]string{trace.TableBadEvents, trace.TableSimTruth}, l.badEvents, l.simTruth)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	d.Origin, d.End = math.MaxInt64, math.MinInt64
	for _, g := range l.byIndex {
		d.sortGPU(g)
		d.GPUs = append(d.GPUs, g)
	}
	slices.SortFunc(d.GPUs, func(a, b *GPU) int { return a.Index - b.Index })
	for _, g := range d.GPUs {
		g.NodeGPU = g.Index
	}
	// The host's RAPL counters are no GPU's: read apart from the GPU tables.
	if err := l.hostEnergy(); err != nil {
		return nil, fmt.Errorf("%s: %s table: %w", dir, trace.TableHostEnergy, err)
	}
	if d.Origin > d.End {
		return nil, fmt.Errorf("%s: the run holds no GPU samples (no energy, driver_power or device_state rows with a value)", dir)
	}
	return d, nil
}

// readTables reads tables in order with their readers, stopping at the
// first error, which names its table.
func (l *loader) readTables(tables []string, read ...func() error) error {
	for i, t := range tables {
		if err := read[i](); err != nil {
			return fmt.Errorf("%s table: %w", t, err)
		}
	}
	return nil
}

// loader reads a run's GPU tables into Data.
type loader struct {
	d       *Data
	byIndex map[int]*GPU
	store   *sampleStore
	pack    bool // the run's fields are packed (PackSamplesAbove)
}

// perGPU is how many rows of a table each GPU has, as meta.json counts
// them (0 when it does not): a series is made that large at its first
// value, rather than grown by doubling, which copies it over and over and
// leaves up to half of it unused.
func (l *loader) perGPU(table string) int {
	m := l.d.Run.Meta
	n, gpus := m.Recorder.Rows[table], int64(len(m.GPUs))
	if n <= 0 || gpus == 0 || n/gpus > 1<<30 {
		return 0
	}
	return int(n/gpus + n/gpus/64 + 16)
}

// PackSamplesAbove is how many GPU samples (driver power, and each field
// of each state row) a run has, as meta.json counts them, above which its
// fields are packed (Samples) rather than held as plain columns, 16 bytes
// a sample. A short run's plain columns are read faster (a directory of
// ten-minute runs, 528,000 samples each, took a quarter longer packed:
// its runs reuse the memory of the runs before). But a run's plain
// columns are new memory that the kernel faults in page by page, which
// on the 2-vCPU VM costs more than packing saves from 1 million samples
// (16 MB, 20 minutes of 8 GPUs) on: the 1 h run (3.2 million) took about
// 0.08 s less CPU packed (a third fewer page faults), in 60 MB less, than
// with 4 million as the bound (issue 12). A run whose meta.json does not
// count its rows is packed.
var PackSamplesAbove int64 = 1 << 20

// samples is an empty field of scale for a GPU of the run, plain or
// packed (PackSamplesAbove), stored in the run's store.
func (l *loader) samples(scale float64, table string) Samples {
	if !l.pack {
		return plainSamples(scale, l.perGPU(table))
	}
	s := newSamples(scale)
	s.store = l.store
	return s
}

// gpu is the GPU of index i, made on first sight.
func (l *loader) gpu(i int32) *GPU {
	g := l.byIndex[int(i)]
	if g == nil {
		// Each field's raw integers over its analysis unit: mW to W, uJ
		// to J.
		g = &GPU{Index: int(i), DriverPower: l.samples(1000, trace.TableDriverPower),
			InstantPower: l.samples(1000, trace.TableState), AveragePower: l.samples(1000, trace.TableState),
			Temperature: l.samples(1, trace.TableState), SMClock: l.samples(1, trace.TableState),
			Util: l.samples(1, trace.TableState), Truth: l.samples(1e6, trace.TableSimTruth),
			// The reasons are a bitmask, not a quantity: packed always,
			// read back as the integers they are.
			Reasons: newSamples(1)}
		g.Reasons.store = l.store
		meta := l.d.Run.Meta
		for k := range meta.GPUs {
			if meta.GPUs[k].Index == int(i) {
				g.Info = &meta.GPUs[k]
			}
		}
		l.byIndex[int(i)] = g
	}
	return g
}

func (l *loader) energy() error {
	cols := []string{trace.ColGPU, trace.ColTimestampNs, trace.ColEnergyMj, trace.ColReadDurationNs}
	return trace.ScanColumns(l.d.Run, trace.TableEnergy, cols, batchRows, func(c *trace.Columns) error {
		for i := 0; i < c.Len(); i++ {
			gi, _ := c.Int(0, i)
			t, _ := c.Int(1, i)
			e, _ := c.Int(2, i)
			rd, _ := c.Int(3, i)
			g := l.gpu(int32(gi))
			if g.Energy == nil {
				g.Energy = make([]trace.EnergyRead, 0, l.perGPU(trace.TableEnergy))
			}
			g.Energy = append(g.Energy, trace.EnergyRead{GPU: int32(gi), TimestampNs: t, EnergyMj: e, ReadDurationNs: rd})
		}
		return nil
	})
}

func (l *loader) driverPower() error {
	cols := []string{trace.ColGPU, trace.ColTimestampNs, trace.ColDriverPowerMw}
	return trace.ScanColumns(l.d.Run, trace.TableDriverPower, cols, batchRows, func(c *trace.Columns) error {
		for i := 0; i < c.Len(); i++ {
			gi, _ := c.Int(0, i)
			t, _ := c.Int(1, i)
			if mw, ok := c.Int(2, i); ok {
				l.gpu(int32(gi)).DriverPower.appendRaw(t, mw)
			}
		}
		return nil
	})
}

func (l *loader) state() error {
	cols := []string{trace.ColGPU, trace.ColTimestampNs, trace.ColInstantPowerMw, trace.ColAveragePowerMw,
		trace.ColTemperatureC, trace.ColSMClockMHz, trace.ColGPUUtilPct, trace.ColClockEventReasons}
	return trace.ScanColumns(l.d.Run, trace.TableState, cols, batchRows, func(c *trace.Columns) error {
		for i := 0; i < c.Len(); i++ {
			gi, _ := c.Int(0, i)
			t, _ := c.Int(1, i)
			for k, s := range l.gpu(int32(gi)).stateSeries() {
				if v, ok := c.Int(2+k, i); ok {
					s.appendRaw(t, v)
				}
			}
		}
		return nil
	})
}

// stateSeries are the series of the device_state table's value columns,
// in their order.
func (g *GPU) stateSeries() [6]*Samples {
	return [6]*Samples{&g.InstantPower, &g.AveragePower, &g.Temperature, &g.SMClock, &g.Util, &g.Reasons}
}

// simTruth reads the true energy of the run's GPUs. It is read last: a
// simulated device's truth of a GPU the run did not record (a job's
// sampler records the GPUs of the step, not every simulated one) makes no
// GPU of the run.
func (l *loader) simTruth() error {
	cols := []string{trace.ColGPU, trace.ColTimestampNs, trace.ColEnergyUj}
	return trace.ScanColumns(l.d.Run, trace.TableSimTruth, cols, batchRows, func(c *trace.Columns) error {
		for i := 0; i < c.Len(); i++ {
			gi, _ := c.Int(0, i)
			t, _ := c.Int(1, i)
			g := l.byIndex[int(gi)]
			if uj, ok := c.Int(2, i); ok && g != nil {
				g.Truth.appendRaw(t, uj)
			}
		}
		return nil
	})
}

func (l *loader) badEvents() error {
	return trace.ScanTable(l.d.Run, trace.TableBadEvents, batchRows, func(rows []trace.BadEvent) error {
		l.d.Bad += len(rows)
		return nil
	})
}

// sortGPU makes every column time-ordered (a reader of merged or imported
// traces must not assume it) and widens the run's time span.
func (d *Data) sortGPU(g *GPU) {
	if !slices.IsSortedFunc(g.Energy, func(a, b trace.EnergyRead) int { return cmp.Compare(a.TimestampNs, b.TimestampNs) }) {
		slices.SortStableFunc(g.Energy, func(a, b trace.EnergyRead) int { return cmp.Compare(a.TimestampNs, b.TimestampNs) })
		d.note("unsorted_rows", fmt.Sprintf("%s: energy rows were out of time order and were sorted", g.Label()))
	}
	for _, f := range g.fields() {
		if f.s.seal() {
			d.note("unsorted_rows", fmt.Sprintf("%s: %s samples were out of time order and were sorted", g.Label(), f.name))
		}
	}
	// The reasons share the state rows' stamps: instant power's note
	// tells of them.
	g.Reasons.seal()
	span := func(s *Samples) {
		if s.Len() > 0 {
			first, _ := s.First()
			last, _ := s.Last()
			d.Origin = min(d.Origin, first)
			d.End = max(d.End, last)
		}
	}
	if len(g.Energy) > 0 {
		d.Origin = min(d.Origin, g.Energy[0].TimestampNs)
		d.End = max(d.End, g.Energy[len(g.Energy)-1].TimestampNs)
	}
	span(&g.DriverPower)
	span(&g.InstantPower)
	span(&g.AveragePower)
	span(&g.Reasons)
}

// fields are g's sample fields, named as the notes name them.
func (g *GPU) fields() []struct {
	name string
	s    *Samples
} {
	return []struct {
		name string
		s    *Samples
	}{{"driver_power", &g.DriverPower}, {"instant_power", &g.InstantPower}, {"average_power", &g.AveragePower},
		{"temperature", &g.Temperature}, {"sm_clock", &g.SMClock}, {"util", &g.Util}, {"sim_truth", &g.Truth}}
}

func (d *Data) note(code, msg string) {
	d.Notes = append(d.Notes, trace.Warning{Code: code, Message: msg})
}

// eventColumns are read by column (trace.ScanColumns), in this order.
var eventColumns = []string{trace.ColTimestampNs, trace.ColGPU, trace.ColKind, trace.ColName, trace.ColRequestID,
	trace.ColClientTimestampNs, trace.ColCount, trace.ColInputTokens, trace.ColOutputTokens, trace.ColCycle, trace.ColSource,
	trace.ColAttrs, trace.ColTask}

// loadEvents reads the events table column-wise: token rows become Tokens
// (request ids interned), every other row a trace.Event.
func (d *Data) loadEvents() error {
	intern := map[string]string{}
	str := func(b []byte) string {
		if s, ok := intern[string(b)]; ok {
			return s
		}
		s := string(b)
		intern[s] = s
		return s
	}
	// The tasks of a job number their requests each on its own: "r1" of
	// task 2 is not "r1" of task 0, so ids are kept apart by task.
	qualified := map[int32]map[string]string{}
	qualify := func(task int32, id []byte) string {
		if len(id) == 0 {
			return ""
		}
		m := qualified[task]
		if m == nil {
			m = map[string]string{}
			qualified[task] = m
		}
		q, ok := m[string(id)]
		if !ok {
			q = fmt.Sprintf("task%d/%s", task, id)
			m[string(id)] = q
		}
		return q
	}
	// Token and request events index one table of request ids (d.IDs),
	// looked up in recent first (idCache), then in every id.
	ids := map[string]int32{}
	var recent idCache
	reqIndex := func(raw []byte, task int64, hasTask bool) int32 {
		hit := recent.slot(raw, int32(task), hasTask)
		if id, ok := hit.get(raw, int32(task), hasTask); ok {
			return id
		}
		var q string
		var id int32
		var ok bool
		if hasTask {
			q = qualify(int32(task), raw)
			id, ok = ids[q]
		} else {
			id, ok = ids[string(raw)]
		}
		if !ok {
			id = int32(len(d.IDs))
			if hasTask {
				d.IDs = append(d.IDs, q)
			} else {
				// Not through str: ids holds each id once already, and
				// interned as well a day's million ids took 50 MB more.
				d.IDs = append(d.IDs, string(raw))
			}
			ids[d.IDs[id]] = id
		}
		name := d.IDs[id] // raw, or "task<n>/" and raw
		hit.set(name[len(name)-len(raw):], int32(task), hasTask, id)
		return id
	}
	var tokens serving.Sorter
	var blocks eventBlocks[trace.Event]
	var requests serving.EventSorter
	err := trace.ScanColumns(d.Run, trace.TableEvents, eventColumns, batchRows, func(c *trace.Columns) error {
		for i := 0; i < c.Len(); i++ {
			ts, _ := c.Int(0, i)
			kind := c.Bytes(2, i)
			if string(kind) == "token" {
				cts, _ := c.Int(5, i)
				n, ok := c.Int(6, i)
				if !ok {
					n = 1
				}
				task, hasTask := c.Int(12, i)
				id := reqIndex(c.Bytes(4, i), task, hasTask)
				tokens.Add(serving.Token{TimestampNs: ts, ClientTimestampNs: cts, Req: id, Count: int32(min(n, 1<<31-1))})
				continue
			}
			if k := serving.RequestKind(string(kind)); k != 0 {
				requests.Add(d.requestEvent(c, i, ts, k, reqIndex))
				continue
			}
			blocks.add(otherEvent(c, i, ts, str, qualify))
		}
		return nil
	})
	if err != nil {
		return err
	}
	d.Events = blocks.joined()
	slices.SortStableFunc(d.Events, func(a, b trace.Event) int { return cmp.Compare(a.TimestampNs, b.TimestampNs) })
	d.RequestEvents = requests.Log()
	d.Tokens = tokens.Log()
	return nil
}

// otherEvent is row i of an events batch (at ts), neither a token nor a
// request event.
func otherEvent(c *trace.Columns, i int, ts int64, str func([]byte) string, qualify func(int32, []byte) string) trace.Event {
	opt := func(col int) *int64 {
		if v, ok := c.Int(col, i); ok {
			return &v
		}
		return nil
	}
	gpu, _ := c.Int(1, i)
	e := trace.Event{TimestampNs: ts, GPU: int32(gpu), Kind: str(c.Bytes(2, i)), Name: str(c.Bytes(3, i)),
		RequestID: str(c.Bytes(4, i)), ClientTimestampNs: opt(5), Count: opt(6),
		InputTokens: opt(7), OutputTokens: opt(8), Source: str(c.Bytes(10, i)),
		Attrs: string(c.Bytes(11, i))}
	if v, ok := c.Int(9, i); ok {
		cy := int32(v)
		e.Cycle = &cy
	}
	if v, ok := c.Int(12, i); ok {
		task := int32(v)
		e.Task = &task
		e.RequestID = qualify(task, c.Bytes(4, i))
	}
	return e
}

// requestEvent is row i of an events batch (at ts, of kind k), compact,
// with nothing allocated beside it: a day's run has two million. reqIndex
// is its request id's index in d.IDs.
func (d *Data) requestEvent(c *trace.Columns, i int, ts int64, k serving.EventKind,
	reqIndex func(raw []byte, task int64, hasTask bool) int32) serving.Event {
	r := serving.Event{TimestampNs: ts, Kind: k}
	raw := c.Bytes(4, i)
	if v, ok := c.Int(5, i); ok {
		r.ClientTimestampNs, r.Has = v, r.Has|serving.HasClient
	}
	if v, ok := c.Int(7, i); ok {
		r.InputTokens, r.Has = v, r.Has|serving.HasInput
	}
	if v, ok := c.Int(8, i); ok {
		r.OutputTokens, r.Has = v, r.Has|serving.HasOutput
	}
	if k == serving.RequestEnd {
		r.Error = serving.ErrorAttr(string(c.Bytes(11, i)))
	}
	task, hasTask := c.Int(12, i)
	if hasTask {
		r.Task, r.Has = int32(task), r.Has|serving.HasTask
		if k == serving.RequestStart {
			d.taskRequest(r.Task, string(raw))
		}
	}
	r.Req = reqIndex(raw, task, hasTask)
	return r
}

// RequestStarts are the stamps of the request_start events, in order.
func (d *Data) RequestStarts() []int64 {
	var out []int64
	c := d.RequestEvents.All()
	for e, ok := c.Next(); ok; e, ok = c.Next() {
		if e.Kind == serving.RequestStart {
			out = append(out, e.TimestampNs)
		}
	}
	return out
}

// eventBlocks holds events in blocks, joined once their number is known:
// a growing slice of them is copied again and again, with the write
// barriers of their pointers (4.6 s of the 24 h synthetic run's load).
type eventBlocks[E any] [][]E

func (b *eventBlocks[E]) add(e E) {
	if k := len(*b) - 1; k < 0 || len((*b)[k]) == cap((*b)[k]) {
		*b = append(*b, make([]E, 0, 4096))
	}
	(*b)[len(*b)-1] = append((*b)[len(*b)-1], e)
}

func (b eventBlocks[E]) joined() []E {
	n := 0
	for _, x := range b {
		n += len(x)
	}
	out := make([]E, 0, n)
	for i, x := range b {
		out = append(out, x...)
		b[i] = nil // the collector may take the block while the rest is copied
	}
	return out
}

// taskRequest notes that task started a request of id, as sent.
func (d *Data) taskRequest(task int32, id string) {
	if id == "" {
		return
	}
	if d.requestTasks == nil {
		d.requestTasks = map[string][]int32{}
	}
	if ts := d.requestTasks[id]; !slices.Contains(ts, task) {
		d.requestTasks[id] = append(ts, task)
	}
}

// noteSharedRequests warns when several tasks sent requests of the same
// id: each is counted as its own request, which is right for tasks that
// serve requests of their own (data parallelism) and wrong for ranks of
// one model that all report the same requests (tensor or pipeline
// parallelism: their tokens are counted once per rank).
func (d *Data) noteSharedRequests() {
	shared := 0
	tasks := map[int32]bool{}
	for _, ts := range d.requestTasks {
		if len(ts) > 1 {
			shared++
			for _, t := range ts {
				tasks[t] = true
			}
		}
	}
	if shared == 0 {
		return
	}
	list := make([]int32, 0, len(tasks))
	for t := range tasks {
		list = append(list, t)
	}
	slices.Sort(list)
	d.note(codeSharedRequests, fmt.Sprintf(
		"%d request id(s) were started by more than one task (tasks %s): each task's requests are counted as its own; if the tasks are ranks of one model (tensor or pipeline parallelism) that all report the same requests, their tokens are counted once per rank: report requests from one rank (docs/multinode.md)",
		shared, joinInts(list)))
}
