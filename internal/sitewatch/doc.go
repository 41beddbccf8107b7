// Package sitewatch is the eyes of site-loss detection: a Watcher probes
// every configured site from one place (a site, or a witness) once a round
// and reports its view of each site to that site's watch workflow
// (workflows.SiteWatch), which alone decides, by quorum, that a site is
// lost. A watcher never decides anything: its own network trouble can at
// most make it one dissenting vote.
//
// Invariants:
//   - A site is Down in a watcher's view when every probe of the site failed
//     in the latest round; one probe answering keeps it up. Debouncing is the
//     workflow's (quorum of places, held for lost_after), not the watcher's.
//   - Probes carry no credential: a TCP connect, a PostgreSQL SSLRequest (a
//     server that answers 'S' or 'N' is alive; no startup message, no user),
//     an HTTP(S) GET that follows no redirect, reads a bounded body and uses
//     no proxy. Every probe is bounded by watch.timeout and dials through
//     Watcher.Dial, so a test can place the watcher anywhere or break it.
//   - A view is sent (SignalWithStart, so the first watcher starts the site's
//     watch) when it changes and at least every watch.report_every; a failed
//     send is logged and retried next round, never fatal. Cancelling the
//     context stops the watcher cleanly.
//   - Nothing here holds a secret: probe URLs have no userinfo, query or
//     fragment (config refuses them), and a probe's error never shows a
//     URL's query, so neither the config nor the history can leak a token.
//   - A view is bounded before it is sent (workflows.CapView) and carries
//     the digest of the input this watcher would start the watch with, so
//     the watch shows a watcher whose configuration differs; drctl sites
//     reset (Reset) ends a watch so the next view restarts it.
//   - A place is a claim: From is what the watcher says, and only the
//     places in watch.places vote. Anything that can write to the Temporal
//     namespace can claim any place, so the namespace is the trust
//     boundary: give each watcher its own mTLS certificate or API key.
//   - New checks at start what a loss will need: the on_loss runbook and
//     its run input, auto_approve_after (at least a minute, a gate that
//     opts in with approval.auto_approve and would not time out first),
//     and approvals.allowed_signers, read as drctl run reads it.
package sitewatch
