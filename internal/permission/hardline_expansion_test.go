package permission_test

import (
	"strings"
	"testing"

	"github.com/agentd/agentd/internal/permission"
)

// TestHardlineExpansions: the floor resolves parameter expansion, globs,
// braces, arithmetic, substitutions, here-documents and functions the way
// the shell does (mvdan.cc/sh), and denies what it cannot resolve where it
// matters, even in full-access mode.
func TestHardlineExpansions(t *testing.T) {
	const unknown = "treated as unknown and denied"
	tests := []struct {
		name, command, reason string // reason: a substring of Decision.Reason
	}{
		// Parameter expansion, resolved.
		{"default of an unset variable", "rm -rf ${x:-/}", "of /"},
		{"default without colon", `rm -rf "${x-/}"`, "of /"},
		{"alternate value", `rm -rf "${x:+/}"`, "of /"},
		{"assigned default", ": ${x:=/}; rm -rf $x", "of /"},
		{"empty suffix removal", `x=/; rm -rf "${x%%}"`, "of /"},
		{"suffix removal", `x=/etc/x; rm -rf "${x%/x}"`, "of /etc"},
		{"prefix removal", `x=//etc; rm -rf "${x#/}"`, "of /etc"},
		{"replacement", "x=/etc; rm -rf ${x/etc/}", "of /"},
		{"global replacement", "x=/tmp/etc; rm -rf ${x//tmp\\//}", "of /etc"},
		{"substring", "x=ab/etc; rm -rf ${x:2}", "of /etc"},
		{"substring with length", "x=/usr/local; rm -rf ${x:0:4}", "of /usr"},
		{"lower case", "x=/ETC; rm -rf ${x,,}", "of /etc"},
		{"indirection", `x=/etc; y=x; rm -rf "${!y}"`, "of /etc"},
		{"array element", `a=(/tmp /); rm -rf "${a[1]}"`, "of /"},
		{"array as a command", `a=(rm -rf /); "${a[@]}"`, "of /"},
		{"positional parameters", `set -- /tmp /; rm -rf "$2"`, "of /"},
		{"shift", `set -- /tmp /; shift; rm -rf "$1"`, "of /"},
		{"unset home", `unset HOME; rm -rf "$HOME/"`, "of /"},
		{"unset first argument", `rm -rf "${1:-/}"`, "of /"},

		// Parameter expansion that cannot be resolved.
		{"parent of home", `rm -rf "${HOME%/*}"`, unknown},
		{"slice of the environment", "rm -rf ${PATH:0:1}", unknown},
		{"environment then ..", `rm -rf "$TMPDIR/.."`, unknown},
		{"indirection to the environment", `rm -rf "${!x}"`, unknown},
		{"names by prefix", `rm -rf ${!P*}`, unknown},
		{"escapes decoded by @E", `x='\x2f'; rm -rf "${x@E}"`, unknown},

		// Globs, extended globs and braces.
		{"extended glob", "rm -rf /@(etc)", "of /@(etc)"},
		{"negated extended glob", "rm -rf /!(tmp)", "of /!(tmp)"},
		{"one or more", "rm -rf /+(e)tc", "of /+(e)tc"},
		{"root star", "rm -rf /*", "of /*"},
		{"question mark", "rm -rf /e?c", "of /e?c"},
		{"glob from a variable", "x='/*'; rm -rf $x", "of /*"},
		{"glob in a loop", `for d in /*; do rm -rf "$d"; done`, "of /*"},
		{"cd into a glob", `for d in /*; do cd "$d" && rm -rf *; done`, "of /*/*"},
		{"brace sequence", "rm -rf /lib{60..70}", "of /lib64"},
		{"brace list", "rm -rf /{tmp,etc}", "of /etc"},
		{"home under a literal prefix", "rm -rf /home/$USER", "of /home/<env>"},
		{"sibling of the home directory", `rm -rf "${HOME}2"`, "of ~2"},

		// Arithmetic.
		{"arithmetic expansion", "rm -rf /lib$((60+4))", "of /lib64"},
		{"let", "let x=64; rm -rf /lib$x", "of /lib64"},
		{"arithmetic command", "x=60; (( x += 4 )); rm -rf /lib$x", "of /lib64"},
		{"arithmetic on an unknown value", "rm -rf /lib$(( $(cat n) ))", unknown},

		// eval, substitutions, here-documents.
		{"eval", `eval "rm -rf /"`, "of /"},
		{"eval of pieces", `a="rm -rf"; eval "$a /"`, "of /"},
		{"eval sets a variable", "eval x=/; rm -rf $x", "of /"},
		{"eval of an unknown script", `eval "$(cat f)"`, unknown},
		{"echo substitution", "rm -rf $(echo /)", "of /"},
		{"backquoted echo", "rm -rf `echo /`", "of /"},
		{"printf substitution", `rm -rf "$(printf '%s' /etc)"`, "of /etc"},
		{"dirname substitution", `rm -rf "$(dirname /etc/passwd)"`, "of /etc"},
		{"unknown substitution", `rm -rf "$(cat f)"`, unknown},
		{"variable from a substitution", `x=$(cat f); rm -rf "$x"`, unknown},
		{"read", `read x; rm -rf "$x"`, unknown},
		{"unknown command name", "$(cat f) -rf /", unknown},
		{"unknown -c script", `bash -c "$(cat f)"`, unknown},
		{"unknown wrapped command", "sudo $(cat f)", unknown},
		{"unknown find path", `find "$(cat d)" -delete`, unknown},
		{"unknown find expression", `find / $(cat f)`, "maybe -delete"},
		{"unknown rm argument", `rm $(cat f) /tmp/x`, unknown},
		{"cd to an unknown directory", `cd "$(cat d)" && rm -rf *`, unknown},
		{"unknown redirection target", `echo x > "$(cat f)"`, unknown},
		{"unknown dd target", `dd if=/dev/zero of="$(cat f)"`, unknown},
		{"unknown power verb", `systemctl "$(cat f)"`, unknown},
		{"here-document with an expansion", "bash <<EOF\nrm -rf ${x:-/}\nEOF", "of /"},
		{"process substitution fed to bash", "bash <(echo 'rm -rf /')", "of /"},
		{"here-string of a variable", `x="rm -rf /"; bash <<< $x`, "of /"},
		{"process substitution as standard input", "sh < <(echo 'rm -rf /')", "of /"},
		{"process substitution sourced", `source <(echo "rm -rf /")`, "of /"},
		{"mktemp then ..", `rm -rf "$(mktemp -d)/.."`, unknown},

		// Functions, control flow, the environment of new processes.
		{"function default argument", `f() { rm -rf "${1:-/}"; }; f`, "of /"},
		{"function with unknown argument", `f() { rm -rf "$1"; }; f "$(cat x)"`, unknown},
		{"function sets a global", "f() { x=/; }; f; rm -rf $x", "of /"},
		{"either branch", "if true; then x=/; else x=/tmp; fi; rm -rf $x", "of /"},
		{"second loop pass", "x=/tmp; for i in 1 2; do rm -rf $x; x=/; done", "of /"},
		{"failed cd", "cd / && cd /nonexistent; rm -rf *", "of /*"},
		{"popd", "pushd /; pushd /tmp; popd; rm -rf *", "of /*"},
		{"printf -v", "printf -v d %s /; rm -rf $d", "of /"},
		{"env assignment for bash -c", "env X=/ bash -c 'rm -rf $X'", "of /"},
		{"sudo assignment for bash -c", `sudo X=/ bash -c 'rm -rf "$X"'`, "of /"},
		{"shell from the environment", "$SHELL -c 'rm -rf /'", "of /"},
		{"unknown declaration", `declare "$(cat f)"; rm -rf "$X"`, unknown},
		{"unknown declaration over a known value", `x=/tmp; declare "$(cat f)"; rm -rf "$x"`, unknown},
		{"unknown unset", `x=/tmp/y; unset $(cat f); rm -rf "$x"/`, unknown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := checkShell(t, tc.command)
			if d.Action != permission.Deny || d.Source != permission.SourceHardline {
				t.Fatalf("Check(%q) = %v by %s (%s); want deny by hardline", tc.command, d.Action, d.Source, d.Reason)
			}
			if !strings.Contains(d.Reason, tc.reason) {
				t.Errorf("Check(%q).Reason = %q; want it to contain %q", tc.command, d.Reason, tc.reason)
			}
		})
	}
}

// TestHardlineExpansionsAllowed: what the shell resolves to something
// harmless, and what only the operator's environment decides, is not
// denied.
func TestHardlineExpansionsAllowed(t *testing.T) {
	tests := []struct{ name, command string }{
		{"relative build dir", "rm -rf build/"},
		{"node_modules", "rm -rf ./node_modules"},
		{"known relative variable", `x=tmp; rm -rf "$x"`},
		{"git status", "git status"},
		{"home as a default listing", "ls -la ${HOME:-.}"},
		{"environment directory", `rm -rf "$BUILD_DIR/out"`},
		{"environment default", `rm -rf "${TMPDIR:-/tmp}/build"`},
		{"default of a known variable", `d=${D:-/tmp/x}; rm -rf "$d"`},
		{"transformed known value", `x=/tmp/a/b; rm -rf "${x%/b}"`},
		{"first argument defaults to a build dir", `rm -rf "${1:-build}"`},
		{"guarded by :?", `rm -rf "${DIR:?}"/`},
		{"guard that fails", `x=; rm -rf "${x:?}/"`},
		{"mktemp", `tmp=$(mktemp -d); cd "$tmp"; rm -rf "$tmp"`},
		{"mktemp directly", `rm -rf "$(mktemp -d)"`},
		{"loop over a glob", `for f in *.log; do rm -f "$f"; done`},
		{"array of a glob", `files=(*.o); rm -f "${files[@]}"`},
		{"long numeric sequence", "for i in {1..5000}; do echo $i; done"},
		{"log file named by date", "make > build-$(date +%F).log"},
		{"pid from a file", "kill $(cat server.pid)"},
		{"unknown value echoed", `x=$(cat f); echo "$x"`},
		{"unknown find name", `find . -name "$(cat pattern)" -delete`},
		{"arithmetic", "echo $((1+2)) $((x+1))"},
		{"c-style loop", "for ((i=0;i<3;i++)); do rm -rf /tmp/x$i; done"},
		{"counter", "i=0; while [ $i -lt 3 ]; do i=$((i+1)); rm -rf /tmp/x$i; done"},
		{"subshell cd", "(cd /); rm -rf *"},
		{"exported variable in bash -c", `export x=/tmp/y; bash -c 'rm -rf "$x"'`},
		{"quoted glob", `rm -rf '/*'`},
		{"escaped glob", `rm -rf /\*`},
		{"here-document to cat", "cat <<EOF\n${x:-/}\nEOF"},
		{"quoted here-document to bash", "bash <<'EOF'\necho $HOME\nEOF"},
		{"replace slashes", `x=a/b; echo "${x//\//_}"`},
		{"PWD subdirectory", `rm -rf "$PWD/build"`},
		{"which", `"$(which python3)" -m pytest`},
		{"command from the environment", "$PYTHON -m pytest -q"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if d := checkShell(t, tc.command); d.Source == permission.SourceHardline {
				t.Errorf("Check(%q) = %v (%s); want no hardline denial", tc.command, d.Action, d.Reason)
			}
		})
	}
}
