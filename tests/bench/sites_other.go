//go:build !linux

package main

import (
	"context"
	"errors"
	"io"
	"os"
	"time"
)

// The sites tables need Linux network namespaces (sites.go).

const siteHelperArg = "site-helper"

type sitesOptions struct {
	cuts, partitions    int
	interval, lostAfter time.Duration
}

func (sitesOptions) check() error { return nil }

func siteHelper([]string) int {
	_, _ = io.WriteString(os.Stderr, "site-helper: Linux only\n")
	return 1
}

func benchSites(context.Context, io.Writer, io.Writer, string, sitesOptions) error {
	return errors.New("the sites figures need Linux network namespaces")
}
