package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
)

// maxBackoff caps the wait between two attempts (a Retry-After included).
const maxBackoff = 30 * time.Second

// event is the body of a webhook POST.
type event struct {
	Status string `json:"status"` // "firing" or "resolved"
	Alert  Alert  `json:"alert"`
}

// webhook sends events, one at a time and in order, from a bounded queue
// that drops its oldest event when full. A hand-written queue rather than
// a channel: dropping the oldest (not the newest) keeps the latest state,
// which is what a receiver acts on.
type webhook struct {
	url      string
	host     string // what the logs name: the URL may hold a token
	client   *http.Client
	attempts int
	timeout  time.Duration
	backoff  time.Duration
	max      int
	log      *zap.Logger

	ctx    context.Context // canceled when Close's drain time is up
	cancel context.CancelFunc
	wake   chan struct{}
	done   chan struct{}

	mu      sync.Mutex
	queue   []event
	closing bool
}

func newWebhook(cfg Config, host string, log *zap.Logger) *webhook {
	ctx, cancel := context.WithCancel(context.Background())
	w := &webhook{
		url: cfg.Webhook, host: host, client: &http.Client{},
		attempts: cfg.WebhookAttempts, timeout: cfg.WebhookTimeout, backoff: cfg.WebhookBackoff, max: cfg.QueueSize,
		log: log.With(zap.String("webhook_host", host)), ctx: ctx, cancel: cancel,
		wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
	go w.loop()
	return w
}

// enqueue queues ev; it never blocks.
func (w *webhook) enqueue(ev event) {
	w.mu.Lock()
	if w.closing {
		w.mu.Unlock()
		w.log.Warn("alert event not sent to the webhook: shutting down", zap.String("alert", ev.Alert.Name), zap.String("status", ev.Status))
		return
	}
	var dropped *event
	if len(w.queue) >= w.max {
		old := w.queue[0]
		dropped = &old
		w.queue = w.queue[1:]
	}
	w.queue = append(w.queue, ev)
	w.mu.Unlock()
	if dropped != nil {
		w.log.Warn("alert webhook queue full: the oldest event was dropped", zap.Int("queue", w.max),
			zap.String("alert", dropped.Alert.Name), zap.String("status", dropped.Status), zap.String("summary", dropped.Alert.Summary))
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// close stops taking events and sends the queued ones for at most drain.
func (w *webhook) close(drain time.Duration) {
	w.mu.Lock()
	w.closing = true
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	t := time.AfterFunc(drain, w.cancel)
	<-w.done
	t.Stop()
	w.cancel()
}

func (w *webhook) loop() {
	defer close(w.done)
	for {
		ev, ok := w.next()
		if !ok {
			break
		}
		w.send(ev)
	}
	w.mu.Lock()
	left := len(w.queue)
	w.queue = nil
	w.mu.Unlock()
	if left > 0 {
		w.log.Warn("alert events not sent to the webhook: shutdown drain time is up", zap.Int("events", left))
	}
}

// next waits for an event; false when closing with nothing queued, or when
// the drain time is up.
func (w *webhook) next() (event, bool) {
	for {
		if w.ctx.Err() != nil {
			return event{}, false
		}
		w.mu.Lock()
		if len(w.queue) > 0 {
			ev := w.queue[0]
			w.queue = w.queue[1:]
			w.mu.Unlock()
			return ev, true
		}
		closing := w.closing
		w.mu.Unlock()
		if closing {
			return event{}, false
		}
		select {
		case <-w.wake:
		case <-w.ctx.Done():
		}
	}
}

// send posts ev, retrying network errors, timeouts, 408, 429 and 5xx with
// backoff; another answer is final. Written here rather than taken from a
// retrying HTTP client (hashicorp/go-retryablehttp, say): the loop is a few
// lines, it must stop at the shutdown's drain deadline (w.ctx) rather than
// finish its backoff, and its errors must never carry the URL, which may
// hold a token; a new dependency would bring its own logging of requests.
func (w *webhook) send(ev event) {
	body, err := json.Marshal(ev)
	if err != nil {
		w.log.Error("alert event not encodable", zap.Error(err))
		return
	}
	fields := []zap.Field{zap.String("alert", ev.Alert.Name), zap.String("status", ev.Status)}
	var wait time.Duration
	for attempt := 1; attempt <= w.attempts; attempt++ {
		if attempt > 1 {
			wait = max(wait, min(w.backoff<<min(attempt-2, 20), maxBackoff))
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-w.ctx.Done():
				t.Stop()
				w.log.Warn("alert event not sent to the webhook: shutdown drain time is up", fields...)
				return
			}
		}
		retryAfter, retry, err := w.post(body)
		if err == nil {
			w.log.Debug("alert event sent to the webhook", fields...)
			return
		}
		if !retry {
			w.log.Error("alert webhook refused the event; not retried", append(fields, zap.Error(err))...)
			return
		}
		if attempt < w.attempts {
			w.log.Warn("alert webhook attempt failed; retrying", append(fields, zap.Int("attempt", attempt), zap.Error(err))...)
		} else {
			w.log.Error("alert webhook failed; event dropped", append(fields, zap.Int("attempts", attempt), zap.Error(err))...)
		}
		wait = min(retryAfter, maxBackoff)
	}
}

// post makes one attempt. retry says whether another may succeed; a
// Retry-After in seconds is returned for the next wait.
func (w *webhook) post(body []byte) (retryAfter time.Duration, retry bool, err error) {
	ctx, cancel := context.WithTimeout(w.ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return 0, false, errors.New("invalid webhook URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "agentd-alerts")
	resp, err := w.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) { // its message holds the URL, which may hold a token
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within %s", w.timeout)
		}
		return 0, true, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return 0, false, nil
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			retryAfter = time.Duration(s) * time.Second
		}
		return retryAfter, true, fmt.Errorf("answered %s", resp.Status)
	default:
		return 0, false, fmt.Errorf("answered %s", resp.Status)
	}
}
