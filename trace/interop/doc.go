// Package interop checks that what llem writes is read the same by
// independent tools: every trace table by Apache Arrow's Go Parquet reader
// (not only by parquet-go, which wrote them), and, through embedded
// DuckDB, the SQL of docs/trace-format.md and docs/results.md, taken from
// the docs themselves, over the recorded runs of testdata/runs and a
// results.parquet of llem analyze, against llem's own answers. It is a
// module of its own so that arrow-go and DuckDB (cgo) stay out of llem's
// dependencies; `make test` runs it.
package interop
