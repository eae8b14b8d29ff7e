package llm

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"
)

// Defaults of Config, from Agentao's LLM client.
const (
	defaultBaseURL       = "https://api.openai.com/v1"
	defaultMaxAttempts   = 5
	defaultBaseBackoff   = 1500 * time.Millisecond
	defaultMaxBackoff    = 30 * time.Second
	defaultMaxRetryTotal = 60 * time.Second
)

// Config configures a [Client]. BaseURL is required; the zero value of any
// other field means its default; negative values are invalid.
type Config struct {
	// BaseURL is the API root, including "/v1" for OpenAI ("OPENAI_BASE_URL").
	BaseURL string
	// APIKey is sent as "Authorization: Bearer <key>"; empty sends no
	// Authorization header (local servers). It is never logged nor put in
	// errors.
	APIKey string `json:"-"`

	// MaxAttempts is how many HTTP attempts one call may make, retries
	// included (default 5).
	MaxAttempts int
	// BaseBackoff is the wait before the first retry, doubled for each next
	// one, plus up to 30% jitter (default 1.5s).
	BaseBackoff time.Duration
	// MaxBackoff caps one wait, Retry-After included (default 30s).
	MaxBackoff time.Duration
	// MaxRetryTotal caps the sum of the waits of one call (default 60s);
	// when it is spent the call fails with its last error.
	MaxRetryTotal time.Duration

	// HTTPClient sends the requests (default: a client of its own, keeping
	// up to MaxIdleConnsPerHost connections to the endpoint alive, with no
	// timeout). A Timeout on it also cuts long streams; bound calls with
	// their context instead.
	HTTPClient *http.Client
	// Logger receives retries at Warn and calls at Debug (default: none).
	Logger *zap.Logger
}

// DefaultConfig returns a Config with every default set, the OpenAI base URL
// and no API key.
func DefaultConfig() Config {
	return Config{
		BaseURL:       defaultBaseURL,
		MaxAttempts:   defaultMaxAttempts,
		BaseBackoff:   defaultBaseBackoff,
		MaxBackoff:    defaultMaxBackoff,
		MaxRetryTotal: defaultMaxRetryTotal,
	}
}

// String describes c without its API key.
func (c Config) String() string {
	key := "unset"
	if c.APIKey != "" {
		key = "set"
	}
	return fmt.Sprintf("llm.Config{BaseURL: %q, APIKey: %s, MaxAttempts: %d, BaseBackoff: %s, MaxBackoff: %s, MaxRetryTotal: %s}",
		c.BaseURL, key, c.MaxAttempts, c.BaseBackoff, c.MaxBackoff, c.MaxRetryTotal)
}

// Validate reports every problem of c.
func (c Config) Validate() error {
	var errs []error
	if c.BaseURL == "" {
		errs = append(errs, errors.New("llm: base URL is empty"))
	} else if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("llm: base URL %q is not an http(s) URL", c.BaseURL))
	}
	if c.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("llm: max attempts is %d; want 1 or more (0: default)", c.MaxAttempts))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"base backoff", c.BaseBackoff}, {"max backoff", c.MaxBackoff}, {"max retry total", c.MaxRetryTotal}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("llm: %s is %s; want 0 or more", d.name, d.v))
		}
	}
	return errors.Join(errs...)
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxAttempts == 0 {
		c.MaxAttempts = d.MaxAttempts
	}
	if c.BaseBackoff == 0 {
		c.BaseBackoff = d.BaseBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = d.MaxBackoff
	}
	if c.MaxRetryTotal == 0 {
		c.MaxRetryTotal = d.MaxRetryTotal
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Transport: newTransport()}
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// MaxIdleConnsPerHost is how many idle connections the default client keeps
// to the model endpoint. Go's default of 2 would make many concurrent
// sessions open (and TLS-handshake) a new connection for most calls.
const MaxIdleConnsPerHost = 256

func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 2 * MaxIdleConnsPerHost
	t.MaxIdleConnsPerHost = MaxIdleConnsPerHost
	return t
}
