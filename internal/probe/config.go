package probe

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// File is where the probe's configuration lives in the configuration tree.
const File = ".agentao/probes.json"

// Defaults and limits of probes.json.
const (
	DefaultEvery   = time.Hour
	MinEvery       = time.Minute
	DefaultTimeout = 2 * time.Minute
	// MaxPrompts and MaxContent bound what one run sends: every prompt goes
	// through every cohort, and every output is stored 48 times over.
	MaxPrompts = 50
	MaxContent = 16 << 10
)

// Config is .agentao/probes.json:
//
//	{"every": "1h", "timeout": "2m",
//	 "prompts": [{"name": "capital", "content": "What is the capital of France?"}]}
//
// Every field is optional. No file, or no prompts, means no probe runs.
type Config struct {
	// Every is the time between runs; at least a minute. Default 1 h.
	Every Duration `json:"every"`
	// Timeout bounds each prompt's turn in each cohort. Default 2 m.
	Timeout Duration `json:"timeout"`
	// Prompts are sent, each in a fresh session, through every cohort.
	Prompts []Prompt `json:"prompts"`
}

// Prompt is one fixed prompt of the probe.
type Prompt struct {
	// Name is [a-z0-9_-]{1,64}, unique: it names the prompt in the
	// admin route, the logs and agentd_probe_changed{probe}.
	Name    string `json:"name"`
	Content string `json:"content"`
}

// Duration is a time.Duration written as a Go duration string ("90s",
// "1h30m") in JSON.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration string such as \"1h\" or \"90s\", not %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration such as \"1h\" or \"90s\", not %q", s)
	}
	*d = Duration(v)
	return nil
}

var promptName = regexp.MustCompile(`^[a-z0-9_-]{1,64}$`)

// Parse reads probes.json. nil data (no file) gives the defaults with no
// prompts: no probe runs. Every problem is reported, naming its field;
// unknown fields are refused by name.
func Parse(data []byte) (Config, error) {
	c := Config{Every: Duration(DefaultEvery), Timeout: Duration(DefaultTimeout)}
	if data == nil {
		return c, nil
	}
	var raw struct {
		Every   *Duration `json:"every"`
		Timeout *Duration `json:"timeout"`
		Prompts []Prompt  `json:"prompts"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return Config{}, errors.New("probes.json is empty; want a JSON object such as {\"prompts\": [...]}")
		}
		return Config{}, jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Config{}, errors.New("probes.json: data after the JSON object")
	}
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if raw.Every != nil {
		c.Every = *raw.Every
		if c.Every.D() < MinEvery {
			bad("every", "%s is too often; the probe runs at most once a minute (\"every\" >= 1m)", c.Every)
		}
	}
	if raw.Timeout != nil {
		c.Timeout = *raw.Timeout
		if c.Timeout.D() <= 0 {
			bad("timeout", "%s: want a positive duration such as \"2m\"", c.Timeout)
		}
	}
	if len(raw.Prompts) > MaxPrompts {
		bad("prompts", "%d prompts; at most %d", len(raw.Prompts), MaxPrompts)
	}
	seen := map[string]int{}
	for i, p := range raw.Prompts {
		field := fmt.Sprintf("prompts[%d]", i)
		switch {
		case !promptName.MatchString(p.Name):
			bad(field+".name", "%q: want 1 to 64 characters of a-z, 0-9, '_' and '-'", p.Name)
		case seen[p.Name] > 0:
			bad(field+".name", "%q is also the name of prompts[%d]; names must be unique", p.Name, seen[p.Name]-1)
		default:
			seen[p.Name] = i + 1
		}
		switch {
		case strings.TrimSpace(p.Content) == "":
			bad(field+".content", "empty; want the prompt to send")
		case len(p.Content) > MaxContent:
			bad(field+".content", "%d bytes; at most %d", len(p.Content), MaxContent)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	c.Prompts = raw.Prompts
	return c, nil
}

// jsonError names an unknown field with the ones that exist.
func jsonError(err error) error {
	if s := err.Error(); strings.HasPrefix(s, "json: unknown field ") {
		return fmt.Errorf("unknown field %s (probes.json has every, timeout and prompts; a prompt has name and content)",
			strings.TrimPrefix(s, "json: unknown field "))
	}
	return fmt.Errorf("probes.json: %w", err)
}
