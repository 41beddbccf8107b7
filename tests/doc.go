// Package tests holds drctl's integration, end-to-end and replay tests. They
// run against a real Temporal dev server (bin/temporal, started per test on
// a free loopback port) and real worker processes; tests/histories holds
// recorded run histories replayed against the current build.
package tests
