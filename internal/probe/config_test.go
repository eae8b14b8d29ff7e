package probe_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/probe"
)

func TestParse(t *testing.T) {
	defaults := probe.Config{Every: probe.Duration(time.Hour), Timeout: probe.Duration(2 * time.Minute)}
	long := strings.Repeat("x", probe.MaxContent+1)
	tests := []struct {
		name string
		data string // "-" is no file
		want probe.Config
		errs []string // each must be in the error
	}{
		{name: "no file: no probe", data: "-", want: defaults},
		{name: "empty object: no probe", data: `{}`, want: defaults},
		{name: "full", data: `{"every": "30m", "timeout": "45s", "prompts": [{"name": "capital", "content": "What is the capital of France?"}, {"name": "sum_2-b", "content": "2+2?"}]}`,
			want: probe.Config{Every: probe.Duration(30 * time.Minute), Timeout: probe.Duration(45 * time.Second), Prompts: []probe.Prompt{
				{Name: "capital", Content: "What is the capital of France?"}, {Name: "sum_2-b", Content: "2+2?"}}}},
		{name: "prompts only take the defaults", data: `{"prompts": [{"name": "a", "content": "hi"}]}`,
			want: probe.Config{Every: defaults.Every, Timeout: defaults.Timeout, Prompts: []probe.Prompt{{Name: "a", Content: "hi"}}}},
		{name: "every at the minimum", data: `{"every": "1m"}`, want: probe.Config{Every: probe.Duration(time.Minute), Timeout: defaults.Timeout}},
		{name: "every too short", data: `{"every": "59s"}`, errs: []string{"every: 59s is too often"}},
		{name: "every not a duration", data: `{"every": "hourly"}`, errs: []string{`"hourly"`}},
		{name: "every a number", data: `{"every": 3600}`, errs: []string{"duration string"}},
		{name: "timeout zero", data: `{"timeout": "0s"}`, errs: []string{"timeout: 0s"}},
		{name: "unknown field named", data: `{"evry": "1h"}`, errs: []string{`unknown field "evry"`}},
		{name: "unknown prompt field named", data: `{"prompts": [{"name": "a", "prompt": "hi"}]}`, errs: []string{`unknown field "prompt"`}},
		{name: "every problem at once", data: `{"every": "1s", "prompts": [{"name": "Capital", "content": "x"}, {"name": "a", "content": " "}, {"name": "a", "content": "y"}, {"name": "", "content": "z"}, {"name": "b", "content": "` + long + `"}]}`,
			errs: []string{"every: 1s", `prompts[0].name: "Capital"`, "prompts[1].content: empty", `prompts[2].name: "a" is also the name of prompts[1]`, `prompts[3].name: ""`, "prompts[4].content: 16385 bytes"}},
		{name: "name too long", data: `{"prompts": [{"name": "` + strings.Repeat("a", 65) + `", "content": "x"}]}`, errs: []string{"prompts[0].name"}},
		{name: "malformed", data: `{"every": `, errs: []string{"probes.json"}},
		{name: "trailing data", data: `{} {}`, errs: []string{"data after the JSON object"}},
		{name: "empty file", data: ``, errs: []string{"empty"}},
		{name: "not an object", data: `[]`, errs: []string{"probes.json"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var data []byte
			if tc.data != "-" {
				data = []byte(tc.data)
			}
			got, err := probe.Parse(data)
			if len(tc.errs) > 0 {
				if err == nil {
					t.Fatalf("Parse(%s) = %+v; want an error", tc.data, got)
				}
				for _, e := range tc.errs {
					if !strings.Contains(err.Error(), e) {
						t.Errorf("Parse(%s) error %q; want it to say %q", tc.name, err, e)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%s) = %v", tc.data, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Parse(%s) = %+v; want %+v", tc.data, got, tc.want)
			}
		})
	}
}

func TestTooManyPrompts(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"prompts": [`)
	for i := 0; i <= probe.MaxPrompts; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"name": "p%d", "content": "x"}`, i)
	}
	b.WriteString(`]}`)
	if _, err := probe.Parse([]byte(b.String())); err == nil || !strings.Contains(err.Error(), "at most 50") {
		t.Errorf("Parse(51 prompts) = %v; want at most 50", err)
	}
}
