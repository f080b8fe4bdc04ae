"""Reads a run's tables with pandas (pyarrow), as a user would, and checks
them against the run's meta.json: rows per table, each column chunk's
codec and path_in_schema, the driver samples' mean power. Issue 11: the
trace stays readable by Arrow, DuckDB and pandas (DuckDB and arrow-go are
checked in trace/interop; this is the Python side, where pyarrow is).

    python3 bench/gpu/read_parquet.py RUN_DIR [RUN_DIR ...]

Exits 1 when a table's rows differ from meta.json or a column chunk does
not name its column."""
import glob
import json
import os
import sys

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

bad = 0
for run in sys.argv[1:]:
    meta = json.load(open(os.path.join(run, "meta.json")))
    rows = meta["recorder"]["rows"]
    print("%s (trace format %s, pandas %s, pyarrow %s)" % (run, meta.get("schema_version"), pd.__version__, pa.__version__))
    for table in sorted(rows):
        segs = sorted(glob.glob(os.path.join(run, table, "part-*.parquet")))
        if not segs:
            continue
        frames, codecs, unnamed = [], set(), 0
        for s in segs:
            frames.append(pd.read_parquet(s, engine="pyarrow"))
            md = pq.ParquetFile(s).metadata
            for g in range(md.num_row_groups):
                for c in range(md.num_columns):
                    col = md.row_group(g).column(c)
                    codecs.add("%s:%s" % (col.path_in_schema or "''", col.compression))
                    if col.path_in_schema != md.schema.column(c).path:
                        unnamed += 1
        df = pd.concat(frames, ignore_index=True)
        note = ""
        if table == "driver_power":
            note = "; mean %.1f W; columns %s" % (df["driver_power_mw"].mean() / 1000, " ".join(sorted(codecs)))
        ok = len(df) == rows[table] and unnamed == 0
        bad += not ok
        print("  %-13s %d segments, %d rows (meta.json %d), %d column chunks without their column's name%s%s" % (
            table, len(segs), len(df), rows[table], unnamed, note, "" if ok else "  MISMATCH"))
sys.exit(1 if bad else 0)
