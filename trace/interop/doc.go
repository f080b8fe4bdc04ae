// Package interop checks that llem's trace segments are readable by an
// independent Parquet implementation (Apache Arrow's Go reader), not only
// by parquet-go, which wrote them. It is a module of its own so that
// arrow-go stays out of llem's dependencies; `make test` runs it.
package interop
