// Package netlab gives tests a site of their own on the network: a network
// namespace joined to the root namespace by a veth pair on a private /24,
// with processes and connections placed inside it, and a power loss that
// cuts the site off and kills everything in it. It is Linux-only and needs
// root (CAP_NET_ADMIN and CAP_SYS_ADMIN); NewSite says so with
// ErrUnavailable.
//
// Invariants:
//   - No packet for the site can leave the machine. The namespace has no
//     default route, and the root namespace holds an unreachable route for
//     the site's subnet from before the veth exists until after it is gone,
//     so traffic for the subnet never falls through to the default route.
//   - Every name (namespace, links) carries the process ID and a counter,
//     and the subnet is claimed atomically (the guard route is the claim),
//     so tests on one machine do not collide.
//   - Close removes the namespace, the links and the routes, in an order that
//     keeps the guard route in place until last.
package netlab
