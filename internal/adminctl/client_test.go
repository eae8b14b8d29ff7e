package adminctl

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestServerReplicas(t *testing.T) {
	lookup := func(_ context.Context, host string) ([]string, error) {
		switch host {
		case "agentd-headless":
			return []string{"10.0.0.9", "10.0.0.10", "10.0.0.8"}, nil
		case "v6":
			return []string{"fd00::2"}, nil
		case "empty":
			return nil, nil
		}
		return nil, errors.New("no such host")
	}
	tests := []struct {
		server  string
		want    []string
		wantErr string
	}{
		{server: "http://127.0.0.1:8080/", want: []string{"http://127.0.0.1:8080"}},
		{server: "http://a:1, http://b:2", want: []string{"http://a:1", "http://b:2"}},
		{server: "dns+http://agentd-headless:8080",
			want: []string{"http://10.0.0.10:8080", "http://10.0.0.8:8080", "http://10.0.0.9:8080"}},
		{server: "dns+https://v6:8443", want: []string{"https://[fd00::2]:8443"}},
		{server: "dns+http://v6", want: []string{"http://[fd00::2]"}},
		{server: "http://x:1,dns+http://v6:2", want: []string{"http://x:1", "http://[fd00::2]:2"}},
		{server: "dns+http://nowhere:8080", wantErr: "resolve nowhere: no such host"},
		{server: "dns+http://empty:8080", wantErr: "no addresses"},
		{server: "ftp://x", wantErr: "want http://HOST:PORT"},
		{server: "http://a:1,", wantErr: "want http://HOST:PORT"},
		{server: "http://a:1/v1", wantErr: "want http://HOST:PORT"},
	}
	for _, tc := range tests {
		t.Run(tc.server, func(t *testing.T) {
			var c clientConfig
			c.lookup = lookup
			err := parseOptions("test", "", clientOptions(&c), []string{"--server", tc.server},
				env(map[string]string{"AGENTD_ADMIN_KEY": "k"}), io.Discard)
			var got []string
			if err == nil {
				got, err = c.replicas(t.Context())
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error = %v; want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("replicas = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
