// Package activities is drctl's action registry and the contract every
// action follows.
//
// An action is registered once, with the spec a runbook author sees
// (inputs, outputs), an Observe that only reads and says what Apply would
// change, and an Apply that is idempotent: it observes first, returns
// "already done" (Changed=false) when the desired state holds, otherwise acts
// and then verifies the postcondition. Each action becomes a Temporal
// activity under its own name, so `postgres.promote` shows up as such in
// histories and the UI; its Observe is registered as `NAME.observe` for
// `drctl plan`. Errors that retrying cannot fix are marked with Permanent;
// they become non-retryable Temporal errors here, at the activity boundary,
// and nowhere else. Provider packages (activities/web, activities/postgres, ...) implement
// Action; the worker package wires them into a Registry.
package activities
