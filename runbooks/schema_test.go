package runbooks_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	"github.com/drctl/drctl/runbooks"
)

func schemaDoc(t *testing.T) map[string]any {
	t.Helper()
	b, err := runbooks.Schema(catalog)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	return doc
}

// dig walks nested JSON objects by key.
func dig(t *testing.T, v any, keys ...string) any {
	t.Helper()
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("schema: %q is not under an object (path %v)", k, keys)
		}
		v = m[k]
	}
	return v
}

func TestSchemaDescribesEveryKeyParseAccepts(t *testing.T) {
	doc := schemaDoc(t)
	if doc["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("$schema = %v", doc["$schema"])
	}
	for def, keys := range runbooks.ParserKeys {
		node := any(doc)
		if def != "" {
			node = dig(t, doc, "$defs", def)
		}
		props, _ := dig(t, node, "properties").(map[string]any)
		var got []string
		for k := range props {
			got = append(got, k)
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(keys))
		if !reflect.DeepEqual(got, want) {
			t.Errorf("schema %q properties = %v, parser accepts %v", def, got, want)
		}
	}
}

func TestSchemaActions(t *testing.T) {
	doc := schemaDoc(t)
	enum := dig(t, doc, "$defs", "step", "properties", "action", "enum")
	var got []string
	for _, e := range enum.([]any) {
		got = append(got, e.(string))
	}
	if !reflect.DeepEqual(got, catalog.Names()) {
		t.Errorf("action enum = %v, want %v", got, catalog.Names())
	}
	allOf := dig(t, doc, "$defs", "step", "allOf").([]any)
	if len(allOf) != len(catalog) {
		t.Fatalf("allOf has %d entries, want one per action (%d)", len(allOf), len(catalog))
	}
	for _, entry := range allOf {
		name := dig(t, entry, "if", "properties", "action", "const").(string)
		with := dig(t, entry, "then", "properties", "with")
		spec, _ := catalog.Lookup(name)
		for _, in := range spec.Inputs {
			if dig(t, with, "properties", in.Name) == nil {
				t.Errorf("%s: input %s missing from the schema", name, in.Name)
			}
		}
		if name == "postgres.fence" && !reflect.DeepEqual(dig(t, with, "required"), []any{"target"}) {
			t.Errorf("postgres.fence required = %v, want [target]", dig(t, with, "required"))
		}
		if name == "http.check" {
			wantGroups := []any{
				map[string]any{"anyOf": []any{map[string]any{"required": []any{"url"}}, map[string]any{"required": []any{"urls"}}}},
				map[string]any{"dependentRequired": map[string]any{"json_field": []any{"json_value"}, "json_value": []any{"json_field"}}},
			}
			if got := dig(t, with, "allOf"); !reflect.DeepEqual(got, wantGroups) {
				t.Errorf("http.check groups = %v, want %v", got, wantGroups)
			}
		}
		if name == "http.call" {
			want := []any{map[string]any{"not": map[string]any{"required": []any{"json", "body"}}}}
			if got := dig(t, with, "allOf"); !reflect.DeepEqual(got, want) {
				t.Errorf("http.call groups = %v, want %v", got, want)
			}
		}
	}
}

func TestSchemaWithoutCatalog(t *testing.T) {
	b, err := runbooks.Schema(nil)
	if err != nil || !json.Valid(b) {
		t.Fatalf("Schema(nil) = %s, %v", b, err)
	}
}
