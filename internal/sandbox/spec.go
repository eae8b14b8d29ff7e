package sandbox

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
)

// ExecArg is the first argument that makes agentd act as the sandbox
// helper: main must call [ExecMain] with the arguments after it, before
// doing anything else.
const ExecArg = "__sandbox-exec"

// probeArg, right after ExecArg, makes the helper run the preflight probe
// (see probe_linux.go) instead of executing a command.
const probeArg = "--probe"

// systemReadPaths are what every command may read and execute besides its
// workspace: the programs, their libraries and /etc (without the paths the
// hook hides). Missing ones are skipped. /proc, /sys, /run, /var, /tmp,
// /home, /root and the rest are not readable.
var systemReadPaths = []string{"/bin", "/sbin", "/usr", "/lib", "/lib32", "/lib64", "/libx32", "/etc"}

// Character devices: readable by every profile, writable by every profile
// (/dev/null) or by the write profiles.
var (
	devRead      = []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"}
	devAlways    = []string{"/dev/null"}
	devWriteOnly = []string{"/dev/zero", "/dev/full"}
)

// sensitiveSystemFiles are files beneath the system paths that commands
// never read, although the system paths are readable: secrets of the host
// that a file mode keeps from an unprivileged agentd but not from one that
// runs as root (whose commands keep uid 0, without capabilities).
var sensitiveSystemFiles = []string{"/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-",
	"/etc/sudoers", "/etc/sudoers.d", "/etc/ssh", "/etc/ssl/private", "/etc/security/opasswd"}

// specVersion is the version of the spec format; the helper rejects others.
const specVersion = 2

// spec is what the helper needs to confine and execute one command. It
// travels as a single argv element (base64url of its JSON), never through a
// file, so the command cannot race the helper for it.
type spec struct {
	Version   int      `json:"v"`
	Profile   Profile  `json:"profile"`
	Workspace string   `json:"workspace"`
	Writable  []string `json:"writable,omitempty"`  // extra writable directories
	ReadOnly  []string `json:"read_only,omitempty"` // extra readable paths (sandbox.json's, the session's skills)
	Hidden    []string `json:"hidden,omitempty"`    // paths nothing may read (but the workspace)
	Path      string   `json:"path"`                // the program to execute
	// ExtraFiles is how many descriptors after stderr (3, 4, ...) the
	// command inherits from the helper, as exec.Cmd.ExtraFiles.
	ExtraFiles int `json:"extra_files,omitempty"`
	// Cgroup, when set, is the cgroup v2 directory below which the helper
	// makes the command's own cgroup (cgroup_linux.go).
	Cgroup string `json:"cgroup,omitempty"`
}

func (s spec) encode() string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // strings and a slice of strings always marshal
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeSpec(arg string) (spec, error) {
	var s spec
	raw, err := base64.RawURLEncoding.DecodeString(arg)
	if err != nil {
		return s, fmt.Errorf("spec is not base64url: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return s, fmt.Errorf("spec is not valid: %v", err)
	}
	if dec.More() {
		return s, errors.New("spec is not valid: trailing data")
	}
	return s, s.validate()
}

func (s spec) validate() error {
	if s.Version != specVersion {
		return fmt.Errorf("spec version %d, want %d (is the helper the same agentd binary as the server?)", s.Version, specVersion)
	}
	if !s.Profile.Valid() {
		return fmt.Errorf("spec: unknown profile %q; known: %s", s.Profile, knownProfiles())
	}
	if !filepath.IsAbs(s.Workspace) {
		return fmt.Errorf("spec: workspace %q is not an absolute path", s.Workspace)
	}
	for _, w := range s.Writable {
		if !filepath.IsAbs(w) {
			return fmt.Errorf("spec: writable directory %q is not an absolute path", w)
		}
	}
	for _, r := range s.ReadOnly {
		if !filepath.IsAbs(r) || r == "/" {
			return fmt.Errorf("spec: read-only path %q is not an absolute path below /", r)
		}
	}
	if s.Cgroup != "" && !filepath.IsAbs(s.Cgroup) {
		return fmt.Errorf("spec: cgroup %q is not an absolute path", s.Cgroup)
	}
	if s.ExtraFiles < 0 || s.ExtraFiles > 64 {
		return fmt.Errorf("spec: %d extra files", s.ExtraFiles)
	}
	for _, h := range s.Hidden {
		if !filepath.IsAbs(h) || h == "/" {
			return fmt.Errorf("spec: hidden path %q is not an absolute path below /", h)
		}
	}
	if s.Path == "" {
		return errors.New("spec: no program path")
	}
	return nil
}

// execArgs builds the helper's argv (after the program name) for running
// argv under s.
func execArgs(s spec, argv []string) []string {
	return append([]string{ExecArg, s.encode(), "--"}, argv...)
}

// parseExecArgs splits the helper's arguments (those after ExecArg) into the
// spec and the command's argv.
func parseExecArgs(args []string) (spec, []string, error) {
	if len(args) < 3 || args[1] != "--" {
		return spec{}, nil, fmt.Errorf("usage: agentd %s <spec> -- <program> [args...]", ExecArg)
	}
	s, err := decodeSpec(args[0])
	if err != nil {
		return spec{}, nil, err
	}
	return s, args[2:], nil
}

// Exit codes of the helper's own failures (docker run's convention). The
// command's own exit code passes through unchanged, since the helper
// becomes the command; the "agentd sandbox:" prefix on stderr tells the two
// apart when a command happens to exit with one of these.
const (
	exitSetup      = 125 // the sandbox could not be set up; nothing ran
	exitCannotExec = 126 // the command could not be executed
	exitNotFound   = 127 // the command does not exist
)

// helperFail reports a failure of the helper itself and returns its exit code.
func helperFail(stderr io.Writer, code int, format string, a ...any) int {
	fmt.Fprintf(stderr, "agentd sandbox: "+format+"\n", a...)
	return code
}
