package tcluster

import (
	"bytes"
	"fmt"
	"strings"
	"text/template"

	"github.com/drctl/drctl/internal/devserver"
)

// serverConfig is what the server's static configuration is rendered from.
type serverConfig struct {
	LogLevel  string
	Shards    int
	PGAddress string // host:port
	PGUser    string
	Ports     map[string]servicePorts // by service name
	Certs     certFiles
	Dynamic   string // the dynamic configuration file
}

type servicePorts struct{ GRPC, Membership int }

// passwordEnv carries the database password to the server processes: the
// configuration names it (the server renders its configuration as a
// template when it says enable-template), so no file holds the password.
const passwordEnv = "TEMPORAL_SQL_PASSWORD"

// configTemplate is one static configuration shared by the four service
// processes; each starts with --service naming its own. It uses [[ ]] so
// that the {{ }} left in the output are the server's own template.
var configTemplate = template.Must(template.New("config").Delims("[[", "]]").Parse(`# enable-template
# A drctl test cluster (internal/tcluster). Every service is its own process
# and finds the others through the membership table in PostgreSQL.
log:
  stdout: true
  level: [[ .LogLevel ]]

persistence:
  defaultStore: postgres-default
  visibilityStore: postgres-visibility
  numHistoryShards: [[ .Shards ]]
  datastores:
    postgres-default:
      sql:
        pluginName: postgres12
        databaseName: temporal
        connectAddr: "[[ .PGAddress ]]"
        connectProtocol: tcp
        user: "[[ .PGUser ]]"
        password: {{ env "` + passwordEnv + `" | quote }}
        maxConns: 10
        maxIdleConns: 10
        maxConnLifetime: 1h
    postgres-visibility:
      sql:
        pluginName: postgres12
        databaseName: temporal_visibility
        connectAddr: "[[ .PGAddress ]]"
        connectProtocol: tcp
        user: "[[ .PGUser ]]"
        password: {{ env "` + passwordEnv + `" | quote }}
        maxConns: 2
        maxIdleConns: 2
        maxConnLifetime: 1h

global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: 127.0.0.1
  tls:
    # Clients (drctl, its workers, the system worker) must present a
    # certificate signed by the cluster's CA: mutual TLS on the frontend.
    frontend:
      server:
        certFile: [[ .Certs.ServerCert ]]
        keyFile: [[ .Certs.ServerKey ]]
        requireClientAuth: true
        clientCaFiles:
          - [[ .Certs.CA ]]
      client:
        serverName: ` + ServerName + `
        rootCaFiles:
          - [[ .Certs.CA ]]
    systemWorker:
      certFile: [[ .Certs.ClientCert ]]
      keyFile: [[ .Certs.ClientKey ]]
      client:
        serverName: ` + ServerName + `
        rootCaFiles:
          - [[ .Certs.CA ]]

services:
[[- range $name, $p := .Ports ]]
  [[ $name ]]:
    rpc:
      grpcPort: [[ $p.GRPC ]]
      membershipPort: [[ $p.Membership ]]
      bindOnLocalHost: true
[[- end ]]

clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: 127.0.0.1:[[ (index .Ports "frontend").GRPC ]]

dcRedirectionPolicy:
  policy: noop

archival:
  history:
    state: disabled
  visibility:
    state: disabled

namespaceDefaults:
  archival:
    history:
      state: disabled
    visibility:
      state: disabled

dynamicConfigClient:
  filepath: [[ .Dynamic ]]
  pollInterval: 10s
`))

func (sc serverConfig) render() ([]byte, error) {
	var b bytes.Buffer
	if err := configTemplate.Execute(&b, sc); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// devServerDefaults are the values the Temporal CLI's dev server sets for
// itself (temporalcli's defaultDynamicConfigValues and its devserver
// package), so that a step costs the same number of round trips on both
// engines. Search attributes are read fresh on every use: a test registers
// them and starts a run at once.
var devServerDefaults = [][2]string{
	{"system.forceSearchAttributesCacheRefreshOnRead", "true"},
	{"frontend.persistenceMaxQPS", "10000"},
	{"history.persistenceMaxQPS", "45000"},
	{"history.hostLevelCacheMaxSize", "8096"},
	{"frontend.namespaceRPS.visibility", "100"},
}

// dynamicConfig is the dynamic configuration file: the dev server's own
// defaults, then, unless untuned, devserver.TunedArgs (the one list of
// tuning values drctl uses, so both engines are tuned alike).
func dynamicConfig(untuned bool) ([]byte, error) {
	values := append([][2]string(nil), devServerDefaults...)
	if !untuned {
		args := devserver.TunedArgs
		for i := 0; i < len(args); i++ {
			if args[i] != "--dynamic-config-value" || i+1 == len(args) {
				return nil, fmt.Errorf("devserver.TunedArgs: unexpected %q", args[i])
			}
			i++
			k, v, ok := strings.Cut(args[i], "=")
			if !ok {
				return nil, fmt.Errorf("devserver.TunedArgs: %q is not key=value", args[i])
			}
			values = append(values, [2]string{k, v})
		}
	}
	var b bytes.Buffer
	b.WriteString("# A drctl test cluster's dynamic configuration (internal/tcluster).\n")
	for _, kv := range values {
		// The dev server's flag values are JSON, which YAML reads as is.
		fmt.Fprintf(&b, "%s:\n  - value: %s\n", kv[0], kv[1])
	}
	return b.Bytes(), nil
}
