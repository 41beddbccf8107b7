package config

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/drctl/drctl/runbooks"

	"gopkg.in/yaml.v3"
)

// Slack IDs are case-sensitive, upper-case letters and digits after a
// one-letter type prefix. Underscores are allowed too: they never occur in
// real IDs, but cannot be mistaken for anything else either, and test
// workspaces use them. What these refuse is what would never match a
// click: a name where an ID belongs, a lower-cased ID, an ID of the wrong
// kind.
var (
	slackUserID  = regexp.MustCompile(`^[UW][A-Z0-9_]+$`)
	slackGroupID = regexp.MustCompile(`^S[A-Z0-9_]+$`)
)

// slackIDProblems checks one Slack ID map: every key matches id, every
// value is a non-empty name. Problems come in key order.
func slackIDProblems(key string, m map[string]string, id *regexp.Regexp, idKind, valueKind string) []string {
	var problems []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !id.MatchString(k) {
			p := fmt.Sprintf("%s: %q is not %s", key, k, idKind)
			switch {
			case id.MatchString(strings.ToUpper(k)):
				p += fmt.Sprintf(" (Slack IDs are upper-case: did you mean %q?)", strings.ToUpper(k))
			case id.MatchString(m[k]):
				p += " (the mapping is Slack ID: name; is it reversed?)"
			}
			problems = append(problems, p)
			continue
		}
		if strings.TrimSpace(m[k]) == "" {
			problems = append(problems, fmt.Sprintf("%s: %s maps to an empty %s", key, k, valueKind))
			continue
		}
		// Names follow the identity rule the workflow holds deciders to;
		// a name it would refuse could never decide anything.
		if err := runbooks.CheckIdentity(m[k]); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %s maps to %q, not a usable %s: %v", key, k, m[k], valueKind, err))
		}
	}
	return problems
}

// refuseSlackIDEnv refuses DRCTL_SLACK_USERS* and DRCTL_SLACK_GROUPS*
// variables. An environment variable's name cannot carry a Slack ID's case,
// and viper would let DRCTL_SLACK_USERS_UBOB silently replace the identity
// the file gives UBOB; so these maps come from the file alone, and a
// variable that looks like it sets them is an error rather than ignored.
func refuseSlackIDEnv(environ []string) error {
	var found []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		for _, p := range []string{"DRCTL_SLACK_USERS", "DRCTL_SLACK_GROUPS"} {
			if name == p || strings.HasPrefix(name, p+"_") {
				found = append(found, name)
			}
		}
	}
	if len(found) == 0 {
		return nil
	}
	slices.Sort(found)
	return fmt.Errorf("config: %s set in the environment; slack.users and slack.groups are read only from the config file (Slack IDs are case-sensitive)", strings.Join(found, ", "))
}

// keepSlackIDCase replaces s.Users and s.Groups, which viper decoded from
// file with their keys lower-cased, by the same maps read from file with
// their keys as written. Section names match case-insensitively, as viper
// matches them. The two reads must agree but for the keys' case; if they do
// not, Load fails rather than act on either.
func keepSlackIDCase(file []byte, s *Slack) error {
	var doc map[string]any
	if err := yaml.Unmarshal(file, &doc); err != nil {
		return err
	}
	raw, err := lookup(doc, "slack", "slack")
	if err != nil || raw == nil {
		return err
	}
	slack, ok := raw.(map[string]any)
	if !ok {
		return errors.New("slack must be a mapping")
	}
	for _, m := range []struct {
		key  string
		into *map[string]string
	}{
		{"users", &s.Users},
		{"groups", &s.Groups},
	} {
		name := "slack." + m.key
		raw, err := lookup(slack, m.key, name)
		if err != nil {
			return err
		}
		kept, err := stringMap(raw, name)
		if err != nil {
			return err
		}
		if err := sameButCase(name, kept, *m.into); err != nil {
			return err
		}
		*m.into = kept
	}
	return nil
}

// lookup returns the value under key in m, matching key case-insensitively
// as viper does; nil when absent or null. A key written two ways is an
// error: viper would merge the two, and which one wins is not obvious.
func lookup(m map[string]any, key, name string) (any, error) {
	var (
		found any
		seen  []string
	)
	for k, v := range m {
		if strings.EqualFold(k, key) {
			found = v
			seen = append(seen, k)
		}
	}
	if len(seen) > 1 {
		slices.Sort(seen)
		return nil, fmt.Errorf("%s is written %d ways (%s); keys are case-insensitive, keep one", name, len(seen), strings.Join(seen, ", "))
	}
	return found, nil
}

// stringMap returns a YAML mapping with its keys as written. Values that
// are not strings are refused, not converted: an identity is a name.
func stringMap(v any, name string) (map[string]string, error) {
	out := map[string]string{}
	add := func(k, val any) error {
		key := fmt.Sprint(k)
		switch val := val.(type) {
		case string:
			out[key] = val
		case nil:
			out[key] = ""
		default:
			return fmt.Errorf("%s: %s must map to a name (a string), not %T", name, key, val)
		}
		return nil
	}
	switch m := v.(type) {
	case nil:
		return nil, nil
	case map[string]any:
		for k, val := range m {
			if err := add(k, val); err != nil {
				return nil, err
			}
		}
	case map[any]any: // some key is not a string
		for k, val := range m {
			if err := add(k, val); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("%s must be a mapping of Slack ID to name, not %T", name, v)
	}
	return out, nil
}

// sameButCase checks that kept, read with its keys' case preserved, holds
// exactly what viper read (lower-cased) from the same file: no two keys
// that differ only in case, and the same entries otherwise.
func sameButCase(name string, kept, folded map[string]string) error {
	byFolded := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(kept)) {
		l := strings.ToLower(k)
		if other, dup := byFolded[l]; dup {
			return fmt.Errorf("%s: %q and %q differ only in case; Slack IDs are upper-case, keep one", name, other, k)
		}
		byFolded[l] = k
		if v, ok := folded[l]; !ok || v != kept[k] {
			return fmt.Errorf("%s: %s reads differently with and without its case; write %s as a plain mapping of ID: name", name, k, name)
		}
	}
	if len(kept) != len(folded) {
		return fmt.Errorf("%s: %d entries read with their case, %d without; write %s as a plain mapping of ID: name", name, len(kept), len(folded), name)
	}
	return nil
}
