// Package ports picks ports for the component harnesses (pglab, dnslab,
// haproxylab, lab), which never use fixed ports on a shared machine: the
// OS picks, and the harness retries its start if another process takes the
// port before it binds.
package ports

import (
	"errors"
	"fmt"
	"net"
	"strconv"
)

// Free returns a TCP port free on every one of hosts (default
// 127.0.0.1) at the moment of the call, so several sites can share one
// port number on their own addresses.
func Free(hosts ...string) (int, error) {
	if len(hosts) == 0 {
		hosts = []string{"127.0.0.1"}
	}
	for range 20 {
		l, err := net.Listen("tcp", net.JoinHostPort(hosts[0], "0"))
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		free := true
		for _, h := range hosts[1:] {
			if !PortFree(h, port) {
				free = false
				break
			}
		}
		l.Close()
		if free {
			return port, nil
		}
	}
	return 0, fmt.Errorf("no port free on all of %v", hosts)
}

// FreeTCPUDP returns a port free for both TCP and UDP on host (a DNS
// server needs both).
func FreeTCPUDP(host string) (int, error) {
	for range 10 {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(port)))
		l.Close()
		if err == nil {
			u.Close()
			return port, nil
		}
	}
	return 0, errors.New("no port free for both TCP and UDP on " + host)
}

// PortFree reports whether host:port can be listened on (TCP).
func PortFree(host string, port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}
