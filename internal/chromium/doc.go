// Package chromium runs headless Chromium for tests that check what a page
// shows: the document the browser built from it (DumpDOM) or a picture of
// it (Screenshot), not the bytes a server or renderer wrote.
//
// Invariants of every run (Run):
//   - Chromium's HOME, XDG directories and profile are its own, under the
//     directory the test gives it (one of its t.TempDir()s): nothing is
//     read from or written to the user's.
//   - Chromium and its helpers run in their own process group.
//   - When the test ends (or testwait.Bound runs out) every process the run
//     started is killed, each by its id, and the test waits until they are
//     gone, so nothing is left writing into the test's directory. That is
//     the process group, and also the crash handlers, which start their own
//     session: they are found by their command line, which names the dir.
//   - Chromium's stdout goes to a file, not a pipe, so a helper that
//     outlives Chromium cannot hold Wait open.
//
// Without Chromium (Find) a test is skipped, or fails under DRCTL_CI=1.
package chromium
