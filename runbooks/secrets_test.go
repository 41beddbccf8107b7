package runbooks_test

import (
	"testing"

	"github.com/drctl/drctl/runbooks"
)

func TestLooksSecret(t *testing.T) {
	secret := []string{
		"password", "DB_Password", "dbpassword", "passwd", "pwd", "db_pass", "PASS", "passphrase",
		"secret", "client_secret", "token", "api-token", "authToken", "X-Auth-Token",
		"api_key", "apikey", "API_KEY", "apiKey", "X-Api-Key", "XApiKey", "access_key", "accessKey",
		"private_key", "private_key_path", "PrivateKey", "Authorization", "Proxy-Authorization",
		"Cookie", "Set-Cookie", "credential", "db_credentials",
	}
	for _, name := range secret {
		if !runbooks.LooksSecret(name) {
			t.Errorf("LooksSecret(%q) = false, want true", name)
		}
	}
	plain := []string{
		"site", "host", "zone", "key_name", "dns_key", "server", "bypass", "bypass_cache", "passive",
		"compass", "region", "keyword", "monkey", "X-Request-Id", "Accept", "Content-Type", "sslmode", "url", "",
	}
	for _, name := range plain {
		if runbooks.LooksSecret(name) {
			t.Errorf("LooksSecret(%q) = true, want false", name)
		}
	}
}

func TestSecretInText(t *testing.T) {
	tests := []struct{ text, want string }{
		{"https://app.example.com/healthz", ""},
		{"https://app.example.com/healthz?site=west&lsn=${{ steps.p.outputs.lsn }}", ""},
		{"host=db1 sslmode=require port=5432", ""},
		{"Promote ${{ params.site }}?", ""},
		{"postgres://app:hunter2@db1:5432/payments", "a URL with a password"},
		{"https://app.example.com/?token=abc", `the URL query parameter "token", which looks like a secret`},
		{"https://app.example.com/?a=1&X-Api-Key=abc", `the URL query parameter "X-Api-Key", which looks like a secret`},
		{"https://app.example.com/?token=", ""}, // nothing given
		{"host=db1 user=app password=hunter2", "password=..., which looks like a secret"},
		{"key: -----BEGIN EC PRIVATE KEY-----\nMHc...", "a private key (a -----BEGIN ... PRIVATE KEY----- block)"},
		{"-----BEGIN PGP PRIVATE KEY BLOCK-----", "a private key (a -----BEGIN ... PRIVATE KEY----- block)"},
		{"-----BEGIN CERTIFICATE-----", ""}, // public
	}
	for _, tt := range tests {
		if got := runbooks.SecretInText(tt.text); got != tt.want {
			t.Errorf("SecretInText(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}
