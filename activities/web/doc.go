// Package web holds drctl's HTTP actions: http.check, the health gate a
// failover waits on (several URLs, expected status, body substring or JSON
// field, consecutive successes, per-try timeout, overall deadline), and
// http.call, a webhook or admin call that carries an idempotency key derived
// from the run and step, so a retried step is recognisable by its receiver.
// What http.call keeps of an answer (outputs and errors, which land in the
// workflow history) is bounded and redacted: the credentials it sent, in
// any spelling, and anything shaped like a credential are replaced.
// Headers a runbook sets are held to HTTP's rules before anything is sent.
//
// A per-endpoint circuit breaker, shared by every action in the worker,
// stops asking an endpoint that keeps failing (transport errors, 5xx) for a
// while, so a dying site is not hammered by every gate and retry at once.
package web
