package permission

import (
	"testing"
	"time"
)

// FuzzHardline: the analysis itself, without the recovery that hardline
// adds around it, never panics, takes well under a second, and decides the
// same way twice.
func FuzzHardline(f *testing.F) {
	for _, s := range []string{
		"rm -rf ${x:-/}", `x=/; rm -rf "${x%%}"`, "rm -rf /@(etc)", "rm -rf /!(tmp)", `eval "rm -rf /"`, "rm -rf $(echo /)",
		`a=(rm -rf /); "${a[@]}"`, `x=/etc; y=x; rm -rf "${!y}"`, "rm -rf /lib$((60+4))", "let x=64; (( x++ ))",
		"for d in /*; do cd $d && rm -rf *; done", `f() { rm -rf "${1:-/}"; }; f`, "bash <<EOF\nrm -rf ${x:-/}\nEOF",
		`x='\x02'; IFS=${x@E}; echo $x`, "echo {a..z}{1..3} {-../} {1..9223372036854775807}", `printf -v d '%s' /; rm -rf $d`,
		"declare -n r=x; x=/; rm -rf $r", `set -- a /; shift; rm -rf "$1"`, "pushd /; popd; cd -; rm -rf *",
		`echo "${x//?/${x}}" ${x:1:${#x}} ${x@Q} ${x^^} ${!x[@]}`, "x=$(mktemp -d)/..; rm -rf $x", "$SHELL -c 'rm -rf /'",
		"case $x in (a|b) rm -rf /;; esac", "coproc rm -rf /", "time { rm -rf /; }", "[[ $(rm -rf /) ]]",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, command string) {
		start := time.Now()
		reason := analyse(command)
		if took := time.Since(start); took > time.Second {
			t.Errorf("analyse(%q) took %v", command, took)
		}
		if again := analyse(command); again != reason {
			t.Errorf("analyse(%q) = %q, then %q", command, reason, again)
		}
	})
}
