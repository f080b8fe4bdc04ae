-- Each cycle's energy (driver power integrated by the trapezoid rule over
-- every GPU) and the output tokens streamed in it: the query a user would
-- write instead of llem analyze. RUN_DIR is replaced by the run.
-- Trace format 2: driver_power stamps are timestamp_us (docs/trace-format.md).
WITH cycles AS (
  SELECT cycle,
         min(timestamp_ns) FILTER (WHERE kind = 'cycle_start') AS s,
         max(timestamp_ns) FILTER (WHERE kind = 'cycle_end') AS e
  FROM read_parquet('RUN_DIR/events/part-*.parquet')
  WHERE kind IN ('cycle_start', 'cycle_end')
  GROUP BY cycle
),
power AS (
  SELECT timestamp_us * 1000 AS t, driver_power_mw / 1000.0 AS w,
         lag(timestamp_us * 1000) OVER g AS t0, lag(driver_power_mw) OVER g / 1000.0 AS w0
  FROM read_parquet('RUN_DIR/driver_power/part-*.parquet')
  WINDOW g AS (PARTITION BY gpu ORDER BY timestamp_us)
),
energy AS (
  SELECT c.cycle, sum((p.t - p.t0) / 1e9 * (p.w + p.w0) / 2) AS energy_j
  FROM power p JOIN cycles c ON p.t0 >= c.s AND p.t <= c.e
  GROUP BY c.cycle
),
tokens AS (
  SELECT c.cycle, sum(CASE WHEN kind = 'token' THEN coalesce(count, 1) ELSE 1 END) AS tokens
  FROM read_parquet('RUN_DIR/events/part-*.parquet') ev JOIN cycles c ON ev.timestamp_ns >= c.s AND ev.timestamp_ns < c.e
  WHERE kind IN ('token', 'first_token')
  GROUP BY c.cycle
)
SELECT cycle, energy_j, tokens::DOUBLE, energy_j / tokens
FROM energy JOIN tokens USING (cycle)
ORDER BY cycle;
