package operate

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/usage"
)

// Fleet is what the usage exchange needs of a fleet (fleet.Node).
type Fleet interface {
	Self() string
	Peers() map[string]string // name → base URL, this replica left out
	// Handle serves pattern on the cluster channel, behind its key.
	Handle(pattern string, h http.Handler)
}

// SharePath is where a replica serves its usage share to the others.
const SharePath = "/cluster/v1/usage"

// DefaultShareInterval is how often a replica takes the others' shares: a
// tenant spending on several replicas at once can overshoot its budget by
// what the others count in that time.
const DefaultShareInterval = 2 * time.Second

// maxShare bounds a share's body (tenants × users × 7 days of counts).
const maxShare = 16 << 20

// shareHandler serves this replica's share.
func (o *Operate) shareHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(o.meter.Share(o.cfg.Fleet.Self()))
	})
}

// exchange takes every peer's share every ShareInterval until stop.
func (o *Operate) exchange(stop <-chan struct{}) {
	every := o.cfg.ShareInterval
	if every <= 0 {
		every = DefaultShareInterval
	}
	client := &http.Client{Timeout: every}
	failing := map[string]bool{} // peers whose last fetch failed: logged once per failure streak
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		for name, base := range o.cfg.Fleet.Peers() {
			wg.Go(func() {
				err := o.fetchShare(client, name, base)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil && !failing[name]:
					o.cfg.Logger.Warn("could not take a replica's usage: its share counts as last taken in budgets until it answers",
						zap.String("peer", name), zap.Error(err))
					failing[name] = true
				case err == nil && failing[name]:
					o.cfg.Logger.Info("a replica's usage is taken again", zap.String("peer", name))
					delete(failing, name)
				}
			})
		}
		wg.Wait()
	}
}

func (o *Operate) fetchShare(client *http.Client, name, base string) error {
	ctx, cancel := context.WithTimeout(context.Background(), client.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+SharePath, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+o.cfg.ClusterKey)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", SharePath, resp.Status)
	}
	var s usage.Share
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxShare)).Decode(&s); err != nil {
		return fmt.Errorf("GET %s: %w", SharePath, err)
	}
	if s.Node != name {
		return fmt.Errorf("GET %s: the share is of %q, not of %q", SharePath, s.Node, name)
	}
	o.meter.SetShare(s)
	return nil
}
