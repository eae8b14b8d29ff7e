package flagenv

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"
)

type settings struct {
	addr    string
	workers int
	json    bool
	secret  string
	timeout time.Duration
}

func options(s *settings) []Option {
	return []Option{
		{Flag: "addr", Env: "T_ADDR", Default: ":8080", Arg: "HOST:PORT", Usage: "listen address",
			Apply: func(v string) error { s.addr = v; return NonEmpty(v) }},
		{Flag: "workers", Env: "T_WORKERS", Default: "4", Arg: "N", Usage: "workers",
			Apply: func(v string) (err error) { s.workers, err = IntIn(v, 1, 64); return err }},
		{Flag: "json", Env: "T_JSON", Default: "false", Arg: "BOOL", Usage: "print JSON",
			Apply: func(v string) error { s.json = v == "true"; return nil }},
		{Flag: "timeout", Env: "T_TIMEOUT", Default: "8s", Arg: "DUR", Usage: "timeout",
			Apply: func(v string) (err error) { s.timeout, err = DurIn(v, time.Second, time.Minute); return err }},
		{Env: "T_SECRET", Usage: "a secret",
			Apply: func(v string) error {
				if v != "" && len(v) < 8 {
					return errors.New("too short: " + v)
				}
				s.secret = v
				return nil
			}},
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    settings
		wantErr []string // substrings of the one error; nil for success
		notErr  []string // substrings the error must not contain
	}{
		{name: "defaults", want: settings{addr: ":8080", workers: 4, timeout: 8 * time.Second}},
		{name: "environment over default", env: map[string]string{"T_WORKERS": "9", "T_JSON": "true"},
			want: settings{addr: ":8080", workers: 9, json: true, timeout: 8 * time.Second}},
		{name: "flag over environment", args: []string{"--workers", "12", "--json"}, env: map[string]string{"T_WORKERS": "9"},
			want: settings{addr: ":8080", workers: 12, json: true, timeout: 8 * time.Second}},
		{name: "explicit false flag beats true environment", args: []string{"--json=false"}, env: map[string]string{"T_JSON": "true"},
			want: settings{addr: ":8080", workers: 4, timeout: 8 * time.Second}},
		{name: "secret from environment", env: map[string]string{"T_SECRET": "longenough"},
			want: settings{addr: ":8080", workers: 4, timeout: 8 * time.Second, secret: "longenough"}},
		{name: "every bad value at once, each with its source",
			args: []string{"--workers", "0"}, env: map[string]string{"T_TIMEOUT": "2h", "T_ADDR": " "},
			wantErr: []string{"--workers (--workers)", "from 1 to 64", "--timeout (T_TIMEOUT)", "--addr (T_ADDR): must not be empty"}},
		{name: "a bad secret is never echoed", env: map[string]string{"T_SECRET": "hunter2"},
			wantErr: []string{"T_SECRET (T_SECRET): is invalid"}, notErr: []string{"hunter2"}},
		{name: "unknown flag", args: []string{"--nope"}, wantErr: []string{"nope", "see t --help"}},
		{name: "stray argument", args: []string{"extra"}, wantErr: []string{`unexpected argument "extra"`}},
		{name: "a secret has no flag", args: []string{"--T_SECRET", "x"}, wantErr: []string{"T_SECRET"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got settings
			err := Parse("t", "test", options(&got), tc.args, func(k string) string { return tc.env[k] }, &bytes.Buffer{})
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if got != tc.want {
					t.Fatalf("got %+v, want %+v", got, tc.want)
				}
				return
			}
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("err = %v (%T), want a *UsageError", err, err)
			}
			for _, s := range tc.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
			for _, s := range tc.notErr {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q contains %q", err, s)
				}
			}
		})
	}
}

func TestHelp(t *testing.T) {
	var s settings
	var out bytes.Buffer
	err := Parse("t", "Runs the test.", options(&s), []string{"--help"}, func(string) string { return "" }, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{"Usage: t [flags]", "Runs the test.", "--addr HOST:PORT", "T_ADDR", "default :8080",
		"Environment only", "T_SECRET"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "--T_SECRET") {
		t.Errorf("help offers a flag for a secret:\n%s", out.String())
	}
}

func TestRepeat(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  string
		want string
	}{
		{"default", nil, "", "none"},
		{"environment", nil, "a=1,b=2", "a=1,b=2"},
		{"once", []string{"--pin", "a=1"}, "", "a=1"},
		{"repeated, joined in order", []string{"--pin", "a=1", "--pin=b=2", "--pin", "c=3"}, "", "a=1,b=2,c=3"},
		{"a flag wins over the environment", []string{"--pin", "c=3"}, "a=1", "c=3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			opts := []Option{{Flag: "pin", Env: "T_PIN", Default: "none", Arg: "K=V", Repeat: true, Usage: "pins",
				Apply: func(v string) error { got = v; return nil }}}
			getenv := func(k string) string {
				if k == "T_PIN" {
					return tt.env
				}
				return ""
			}
			if err := Parse("t", "", opts, tt.args, getenv, &bytes.Buffer{}); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}
