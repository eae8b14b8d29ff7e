package secrets_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/agentd/agentd/internal/secrets"
)

// Fake secrets are built from pieces so that no file of this repository
// contains a string a scanner would flag (TestRepositoryIsClean checks it).
var (
	pemBody   = "MIIEow" + strings.Repeat("IBAAKCAQEA7x9+", 4)
	privKey   = "-----BEGIN " + "RSA PRIVATE" + " KEY-----\n" + pemBody + "\n" + pemBody + "\n-----END " + "RSA PRIVATE" + " KEY-----"
	cutKey    = "-----BEGIN " + "OPENSSH PRIVATE" + " KEY-----\n" + pemBody + "\n" + pemBody[:20]
	pubKey    = "-----BEGIN " + "PUBLIC" + " KEY-----\n" + pemBody + "\n-----END " + "PUBLIC" + " KEY-----"
	anthropic = "sk-" + "ant-" + "api03-" + strings.Repeat("aB3dE", 9)
	openai    = "sk-" + "proj-" + strings.Repeat("Xy9Z", 8)
	openaiOld = "sk-" + strings.Repeat("a1B2", 12)
	google    = "AI" + "za" + "Sy" + strings.Repeat("D4x", 11)
	aws       = "AK" + "IA" + "IOSFODNN7" + "EXAMPLE"
	awsTemp   = "AS" + "IA" + "Y34FZKBOKMUTVV7A"
	ghToken   = "gh" + "p_" + strings.Repeat("aB3", 12)
	ghPAT     = "github" + "_pat_" + strings.Repeat("11AB", 6)
	slack     = "xo" + "xb-" + "1234567890-" + "abcdefABCDEF"
	jwt       = "ey" + "JhbGciOiJIUzI1NiJ9" + "." + "ey" + "JzdWIiOiIxMjM0NTY3ODkwIn0" + "." + "SflKxwRJSMeKKF2QT4fwpM"
	opaque    = strings.Repeat("t0k3n", 5) // a 25-character bearer token
	basic     = "dXNlcjpw" + "YXNzd29yZDEyMw=="
)

func TestScan(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []secrets.Finding
		// redacted is Redact(text); "" means text itself.
		redacted string
	}{
		{name: "private key block", text: "key:\n" + privKey + "\nend",
			want:     []secrets.Finding{{Kind: "private_key_block", Line: 2, Column: 1}},
			redacted: "key:\n[REDACTED:private_key_block]\nend"},
		{name: "unterminated private key", text: "$ head -3 id\n" + cutKey + "\n$ next",
			want:     []secrets.Finding{{Kind: "private_key_block", Line: 2, Column: 1}},
			redacted: "$ head -3 id\n[REDACTED:private_key_block]\n$ next"},
		{name: "anthropic", text: "ANTHROPIC_API_KEY=" + anthropic,
			want:     []secrets.Finding{{Kind: "anthropic_api_key", Line: 1, Column: 19}},
			redacted: "ANTHROPIC_API_KEY=[REDACTED:anthropic_api_key]"},
		{name: "openai project key", text: "using key " + openai + " now",
			want:     []secrets.Finding{{Kind: "openai_api_key", Line: 1, Column: 11}},
			redacted: "using key [REDACTED:openai_api_key] now"},
		{name: "openai legacy key", text: "k=" + openaiOld,
			want: []secrets.Finding{{Kind: "openai_api_key", Line: 1, Column: 3}}},
		{name: "google", text: "url?key=" + google + "&q=1",
			want:     []secrets.Finding{{Kind: "google_api_key", Line: 1, Column: 9}},
			redacted: "url?key=[REDACTED:google_api_key]&q=1"},
		{name: "aws access key", text: "aws_access_key_id = " + aws,
			want: []secrets.Finding{{Kind: "aws_access_key", Line: 1, Column: 21}}},
		{name: "aws temporary key", text: "\tAccessKeyId: " + awsTemp + ",",
			want: []secrets.Finding{{Kind: "aws_access_key", Line: 1, Column: 15}}},
		{name: "github token", text: "remote: https://" + ghToken + "@github.com/o/r",
			want:     []secrets.Finding{{Kind: "github_token", Line: 1, Column: 17}},
			redacted: "remote: https://[REDACTED:github_token]@github.com/o/r"},
		{name: "github fine-grained token", text: "GH_TOKEN is " + ghPAT,
			want: []secrets.Finding{{Kind: "github_token", Line: 1, Column: 13}}},
		{name: "slack", text: "slack bot token " + slack,
			want: []secrets.Finding{{Kind: "slack_token", Line: 1, Column: 17}}},
		{name: "jwt, also inside Bearer", text: "cookie " + jwt + "\nAuthorization: " + "Bearer " + jwt,
			want:     []secrets.Finding{{Kind: "jwt", Line: 1, Column: 8}, {Kind: "jwt", Line: 2, Column: 23}},
			redacted: "cookie [REDACTED:jwt]\nAuthorization: Bearer [REDACTED:jwt]"},
		{name: "bearer header keeps the scheme", text: "curl -H 'Authorization: " + "Bearer " + opaque + "' https://x",
			want:     []secrets.Finding{{Kind: "bearer", Line: 1, Column: 32}},
			redacted: "curl -H 'Authorization: Bearer [REDACTED:bearer]' https://x"},
		{name: "bare bearer", text: "header was bearer\t" + opaque,
			want: []secrets.Finding{{Kind: "bearer", Line: 1, Column: 19}}},
		{name: "authorization basic", text: `{"authorization": "` + "Basic " + basic + `"}`,
			want:     []secrets.Finding{{Kind: "bearer", Line: 1, Column: 26}},
			redacted: `{"authorization": "Basic [REDACTED:bearer]"}`},
		{name: "kv password", text: "db password" + "=" + "hunter2" + "hunter2;",
			want:     []secrets.Finding{{Kind: "kv_secret", Line: 1, Column: 13}},
			redacted: "db password=[REDACTED:kv_secret]"},
		{name: "kv JSON key", text: `{"user": "bob", "api_key"` + `: "` + "abc123def456" + `"}`,
			want:     []secrets.Finding{{Kind: "kv_secret", Line: 1, Column: 29}},
			redacted: `{"user": "bob", "api_key": "[REDACTED:kv_secret]"}`},
		{name: "kv environment dump", text: "HOME=/root\nDB_PASSWORD" + "=" + "s3cr3t-Pa55\nAWS_SECRET_ACCESS_KEY" + "=" + "wJalrXUtnFEMI/K7MDENG",
			want:     []secrets.Finding{{Kind: "kv_secret", Line: 2, Column: 13}, {Kind: "kv_secret", Line: 3, Column: 23}},
			redacted: "HOME=/root\nDB_PASSWORD=[REDACTED:kv_secret]\nAWS_SECRET_ACCESS_KEY=[REDACTED:kv_secret]"},
		{name: "kv single word at end of line", text: "the password" + ": " + "correcthorsebattery\nnext line",
			want: []secrets.Finding{{Kind: "kv_secret", Line: 1, Column: 15}}},
		{name: "kv with blanks around the separator", text: "[db]\npassword" + " = " + "Tr0ub4dor&3x",
			want:     []secrets.Finding{{Kind: "kv_secret", Line: 2, Column: 12}},
			redacted: "[db]\npassword = [REDACTED:kv_secret]"},
		{name: "kv base64 value with padding", text: "secret" + "=" + "c2VjcmV0dmFsdWU=",
			want: []secrets.Finding{{Kind: "kv_secret", Line: 1, Column: 8}}},
		{name: "kv value that is a token of another kind", text: "token" + "=" + ghToken,
			want: []secrets.Finding{{Kind: "github_token", Line: 1, Column: 7}}},
		{name: "several kinds, in position order", text: "a " + aws + " b " + slack + "\n" + "secret" + ": " + "x9!x9!x9!x9",
			want:     []secrets.Finding{{Kind: "aws_access_key", Line: 1, Column: 3}, {Kind: "slack_token", Line: 1, Column: 26}, {Kind: "kv_secret", Line: 2, Column: 9}},
			redacted: "a [REDACTED:aws_access_key] b [REDACTED:slack_token]\nsecret: [REDACTED:kv_secret]"},
		{name: "multi-byte text before a secret", text: "clé: ébène —\n  " + aws,
			want: []secrets.Finding{{Kind: "aws_access_key", Line: 2, Column: 3}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := secrets.Scan(tc.text)
			if !slices.Equal(got, tc.want) {
				t.Errorf("Scan(%q) = %+v; want %+v", tc.text, got, tc.want)
			}
			red := secrets.Redact(tc.text)
			if tc.redacted != "" && red != tc.redacted {
				t.Errorf("Redact(%q) = %q; want %q", tc.text, red, tc.redacted)
			}
			if n := strings.Count(red, "[REDACTED:"); n != len(tc.want) {
				t.Errorf("Redact(%q) = %q: %d redactions; want %d", tc.text, red, n, len(tc.want))
			}
			if again := secrets.Scan(red); again != nil {
				t.Errorf("Scan(Redact(%q)) = %+v; want nothing left", tc.text, again)
			}
		})
	}
}

func TestScanFalsePositives(t *testing.T) {
	for _, text := range []string{
		"password: see the vault for the current value",
		"Set the token: authentication happens in the proxy, not here.",
		"token = getToken(request) // refreshed every hour",
		"password: ************************",
		"api_key: ${OPENAI_API_KEY} and token: $GITHUB_TOKEN set by CI",
		"api_key: <your key here>, token: {{ .Values.token }}",
		"max_tokens: 4096, temperature: 0.2, tokenizer: bert-base-uncased",
		"passwords: must be at least 12 characters long",
		"password_hint: the name of your first pet",
		"The secret to good code is small functions and tests.",
		"xapi_key=notarealkeyatall and mytoken=alsonotarealone",
		pubKey,
		"Bearer tokens are described in RFC 6750, section two.",
		"sk-learn is a library; see the scikit-learn docs for details",
		"AKIA is the prefix of AWS access key ids; eyJ starts base64 JSON.",
		"Authorization: see the API gateway docs for the header format",
		"Never output API keys, tokens, passwords, private keys or connection strings.",
		"password" + "=" + "hunter2hun", // 19 characters: shorter than MinLength
		"client := llm.New(llm.Config{APIKey: cfg.OpenAIKey, Model: cfg.Model})",
		"export OPENAI_API_KEY= OPENAI_MODEL=fake-model OPENAI_BASE_URL=http://fakellm:8081/v1",
		"properties:\n  password:\n    required: true\n    minLength: 12",
	} {
		t.Run(text[:min(len(text), 30)], func(t *testing.T) {
			if got := secrets.Scan(text); got != nil {
				t.Errorf("Scan(%q) = %+v; want no findings", text, got)
			}
			if got := secrets.Redact(text); got != text {
				t.Errorf("Redact(%q) = %q; want it unchanged", text, got)
			}
		})
	}
}

// TestRepositoryIsClean is CI's no-secret scan (Agentao §6.8): AGENTAO.md
// (it goes into every prompt, log and git), the skills, and the sources
// of this package and its neighbours, fake secrets included.
func TestRepositoryIsClean(t *testing.T) {
	var paths []string
	for _, root := range []string{"../../AGENTAO.md", "../../instructions", "../../skills", ".", "../skill", "../prompt"} {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if p == root && os.IsNotExist(err) {
					return nil // instructions/ is optional
				}
				return err
			}
			if !d.IsDir() {
				paths = append(paths, p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Contains(paths, "../../AGENTAO.md") {
		t.Fatalf("scanned %q; want ../../AGENTAO.md among them", paths)
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range secrets.Scan(string(data)) {
			t.Errorf("%s:%d:%d: looks like a %s", p, f.Line, f.Column, f.Kind)
		}
	}
}
