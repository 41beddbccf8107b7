package web

import "os"

var (
	getenv   = os.Getenv
	readFile = os.ReadFile
)
