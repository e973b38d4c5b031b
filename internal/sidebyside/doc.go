// Package sidebyside measures objstore beside the caches people would
// pick instead of it, in one run on one machine: nginx's proxy_cache in
// front of the same MinIO, cachenator when its binary is given, and MinIO
// direct. Its harness is a test behind the build tag "sidebyside", which
// `make bench` runs and `make test` never does; it asserts no timing. It
// writes its table and chart into docs/benchmarks.md and
// docs/bench-sidebyside.png.
//
//	make bench
//	go test -tags sidebyside -run TestSideBySide -count=1 -timeout 30m -v ./internal/sidebyside
//
// $BENCH_SECONDS sets the length of each wrk run (default 1; each system
// gets three per size, in turn with the others),
// $BENCH_ONLY a comma-separated subset of the sections hits, cold, peer
// and puts (the docs are then best left alone),
// $CACHENATOR_BIN the path of a cachenator binary to measure too, and
// $BENCH_NO_WRITE=1 leaves the docs alone (the table is still logged).
package sidebyside
