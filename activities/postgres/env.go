package postgres

import "os"

var (
	lookupEnv = os.Getenv
	readFile  = os.ReadFile
)

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "this host"
	}
	return h
}
