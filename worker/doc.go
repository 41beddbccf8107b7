// Package worker wires configuration to a running drctl worker: it builds
// the action registry from the configured providers, dials Temporal,
// registers the interpreter workflows and every action as an activity, and
// runs until its context ends, then stops gracefully (running actions get
// Worker.StopTimeout to finish; what does not finish is retried elsewhere).
//
// Serve is the one way a worker runs — `drctl worker`, `drctl dev`, `drctl
// demo`, the test worker and the benchmarks alike — and Start runs it in
// the background. Replay checks a recorded history against this build.
package worker
