package runbooks_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/drctl/drctl/runbooks"
)

func TestGoodRunbookLoadsClean(t *testing.T) {
	rb, err := runbooks.Load("testdata/good/site-failover.yaml", catalog)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	b, err := json.Marshal(rb)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var back runbooks.Runbook
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	runbooks.StripPositions(rb)
	if !reflect.DeepEqual(*rb, back) {
		t.Errorf("JSON round trip changed the runbook\nparsed: %#v\nback:   %#v", *rb, back)
	}
}
