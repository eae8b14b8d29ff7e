package permission_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/permission"
)

// checkShell runs command through full-access, where every rule allows, so
// that only the hardline floor can deny it.
func checkShell(t *testing.T, command string) permission.Decision {
	t.Helper()
	r, err := permission.Preset(permission.ModeFullAccess)
	if err != nil {
		t.Fatal(err)
	}
	return r.Check(permission.Call{Tool: permission.ShellTool, Args: map[string]any{"command": command}, Confirm: true})
}

func TestHardlineDenies(t *testing.T) {
	tests := []struct {
		name, command, reason string // reason: a substring of Decision.Reason
	}{
		// Recursive delete of /, system directories and home.
		{"rm -rf /", "rm -rf /", "recursive delete of /"},
		{"root glob", "rm -rf /*", "recursive delete of /*"},
		{"fr etc", "rm -fr /etc", "of /etc"},
		{"separate flags", "rm -r -f /usr", "of /usr"},
		{"long flags", "rm --recursive --force /var", "of /var"},
		{"long flag abbreviation", "rm --rec /boot", "of /boot"},
		{"capital R without force", "rm -R /boot", "of /boot"},
		{"flags after operand", "rm /etc -rf", "of /etc"},
		{"end of options", "rm -rf -- /", "of /"},
		{"no-preserve-root", "rm -rf --no-preserve-root /", "of /"},
		{"tilde", "rm -rf ~", "home directory"},
		{"tilde slash", "rm -rf ~/", "home directory"},
		{"other user's home", "rm -rf ~alice", "home directory"},
		{"$HOME", "rm -rf $HOME", "home directory"},
		{"quoted ${HOME}", `rm -rf "${HOME}"`, "home directory"},
		{"${HOME:?}", "rm -rf ${HOME:?}", "home directory"},
		{"home glob", "rm -rf ~/*", "home directory (~/*)"},
		{"/home", "rm -rf /home", "of /home"},
		{"a home", "rm -rf /home/alice", "of /home/alice"},
		{"all homes", "rm -rf /home/*", "of /home/*"},
		{"/root", "rm -rf /root", "of /root"},
		{"double slash", "rm -rf //", "of /"},
		{"dot dot", "rm -rf /tmp/../etc", "of /etc"},
		{"dot", "rm -rf /./", "of /"},
		{"trailing dot", "rm -rf /etc/.", "of /etc"},
		{"second operand", "rm -rf /tmp/x /sbin", "of /sbin"},
		{"glob ?", "rm -rf /e?c", "of /e?c"},
		{"glob class", "rm -rf /[e]tc", "of /[e]tc"},
		{"negated class", "rm -rf '/'[!t]*", "recursive delete"},
		{"under /usr", "rm -rf /usr/lib", "of /usr/lib"},
		{"quoted root", "rm -rf '/'", "of /"},
		{"quoted etc slash", `rm -rf "/etc/"`, "of /etc"},
		{"ansi-c root", "rm -rf $'/'", "of /"},
		{"brace operand", "rm -rf /{etc,tmp}", "of /etc"},
		{"char sequence", "rm -r {-../}", "of /"},

		// Command names: paths, quoting, escapes, case, globs.
		{"/bin/rm", "/bin/rm -rf /", "of /"},
		{"/usr/bin/rm", "/usr/bin/rm -rf /srv", "of /srv"},
		{"backslash", `\rm -rf /`, "of /"},
		{"double-quoted name", `"rm" -rf /`, "of /"},
		{"split quotes", "'r''m' -rf /", "of /"},
		{"partly quoted", `r"m" -rf /opt`, "of /opt"},
		{"ansi-c hex", `$'\x72\x6d' -rf /`, "of /"},
		{"ansi-c octal", `$'\162\155' -rf /proc`, "of /proc"},
		{"upper case", "RM -rf /", "of /"},
		{"glob name", "/bin/r? -rf /", "of /"},
		{"glob dir", "/???/rm -rf /", "of /"},
		{"brace command", "{rm,-rf,/}", "of /"},

		// Wrappers.
		{"sudo", "sudo rm -rf /", "of /"},
		{"sudo options", "sudo -u root -E rm -rf /etc", "of /etc"},
		{"sudo long option", "sudo --user=root rm -rf /", "of /"},
		{"sudo -h ambiguity", "sudo -h rm -rf /", "of /"},
		{"sudo --", "sudo -- rm -rf /", "of /"},
		{"sudo -s", "sudo -s rm -rf /", "of /"},
		{"doas", "doas rm -rf /", "of /"},
		{"env assignment", "env FOO=1 rm -rf /", "of /"},
		{"env -i", "env -i PATH=/bin rm -rf /", "of /"},
		{"env -S", "env -S 'rm -rf /'", "of /"},
		{"nice -n", "nice -n 10 rm -rf /", "of /"},
		{"nice -5", "nice -5 rm -rf /", "of /"},
		{"ionice attached", "ionice -c3 rm -rf /", "of /"},
		{"ionice separate", "ionice -c 3 -n 7 rm -rf /", "of /"},
		{"chrt", "chrt -f 99 rm -rf /", "of /"},
		{"taskset -c", "taskset -c 0 rm -rf /", "of /"},
		{"taskset mask", "taskset 0x1 rm -rf /", "of /"},
		{"timeout", "timeout 5 rm -rf /", "of /"},
		{"timeout options", "timeout -s KILL 10s rm -rf /", "of /"},
		{"stdbuf attached", "stdbuf -o0 rm -rf /", "of /"},
		{"stdbuf separate", "stdbuf -o L rm -rf /", "of /"},
		{"exec", "exec rm -rf /", "of /"},
		{"command", "command -p rm -rf /", "of /"},
		{"builtin exec", "builtin exec rm -rf /", "of /"},
		{"nohup background", "nohup rm -rf / &", "of /"},
		{"busybox", "busybox rm -rf /", "of /"},
		{"strace", "strace -f rm -rf /", "of /"},
		{"flock", "flock /tmp/l rm -rf /", "of /"},
		{"flock -c", "flock /tmp/l -c 'rm -rf /'", "of /"},
		{"unshare", "unshare -r rm -rf /", "of /"},
		{"systemd-run", "systemd-run --scope rm -rf /", "of /"},
		{"parallel", "parallel rm -rf ::: /", "of /"},
		{"parallel template", "parallel 'rm -rf {}' ::: /etc", "of /etc"},
		{"env -C", "env -C / rm -rf *", "of /*"},
		{"time", "time rm -rf /", "of /"},
		{"stacked wrappers", "sudo timeout 5 nice -n 1 env X=1 stdbuf -oL rm -rf /", "of /"},
		{"assignment prefix", "FOO=bar rm -rf /", "of /"},
		{"su -c", "su -c 'rm -rf /'", "of /"},
		{"su user -c", `su root -c "reboot"`, "reboot"},
		{"runuser", "runuser -u root -- rm -rf /", "of /"},
		{"watch", "watch -n 1 'rm -rf /'", "of /"},

		// Lists, pipelines, substitutions, compound commands.
		{"after ;", "ls; rm -rf /", "of /"},
		{"after &&", "true && rm -rf /", "of /"},
		{"after ||", "false || rm -rf /", "of /"},
		{"in a pipe", "echo x | rm -rf /", "of /"},
		{"after newline", "ls\nrm -rf /", "of /"},
		{"line continuation", "rm -rf \\\n/", "of /"},
		{"$( )", "echo $(rm -rf /)", "of /"},
		{"$( ) in double quotes", `echo "$(rm -rf /)"`, "of /"},
		{"backquotes", "echo `rm -rf /`", "of /"},
		{"nested $( )", "echo $(echo $(rm -rf /))", "of /"},
		{"assignment value", "x=$(rm -rf /)", "of /"},
		{"arithmetic", "echo $((1+$(rm -rf /)))", "of /"},
		{"default value", `echo "${x:-$(rm -rf /)}"`, "of /"},
		{"process substitution", "cat <(rm -rf /)", "of /"},
		{"if", "if true; then rm -rf /; fi", "of /"},
		{"while", "while true; do rm -rf /; done", "of /"},
		{"subshell", "(rm -rf /)", "of /"},
		{"group", "{ rm -rf /; }", "of /"},
		{"negation", "! rm -rf /", "of /"},
		{"case", "case x in x) rm -rf / ;; esac", "of /"},
		{"case in $( )", "echo $(case x in x) rm -rf /;; esac)", "of /"},
		{"function body", "f() { rm -rf /; }", "of /"},
		{"trap", "trap 'rm -rf /' EXIT", "of /"},
		{"alias", "alias x='rm -rf /'", "of /"},
		{"eval", "eval 'rm -rf /'", "of /"},
		{"eval words", `eval "rm" "-rf" "/"`, "of /"},

		// Variables and functions.
		{"command in a variable", `c="rm -rf /"; $c`, "of /"},
		{"path in a variable", "d=/; rm -rf $d", "of /"},
		{"quoted variable", `d=/etc; rm -rf "$d"`, "of /etc"},
		{"${name}", "d=/etc; rm -rf ${d}", "of /etc"},
		{"export", `export D=/usr && rm -rf "$D"`, "of /usr"},
		{"for loop", "for d in /tmp /; do rm -rf $d; done", "of /"},
		{"name from pieces", "a=r; b=m; $a$b -rf /", "of /"},
		{"IFS", "IFS=,; c=rm,-rf,/; $c", "of /"},
		{"variable from $(echo)", "cmd=$(echo rm); $cmd -rf /", "of /"},
		{"name from $(echo)", "$(echo rm) -rf /", "of /"},
		{"name from backquotes", "`echo rm` -rf /", "of /"},
		{"cd to a variable", "D=/ ; cd $D; rm -rf *", "of /*"},
		{"function argument", `f() { rm -rf "$1"; }; f /`, "of /"},
		{"function $@", `f() { rm -rf "$@"; }; f /tmp /etc`, "of /etc"},
		{"function command argument", "function g { $1 -rf /; }; g rm", "of /"},
		{"function chain", `f() { g "$@"; }; g() { rm -rf $1; }; f /`, "of /"},
		{"bash -c positional", `bash -c 'rm -rf "$1"' sh /`, "of /"},
		{"expanded into bash -c", `x=/; bash -c "rm -rf $x"`, "of /"},
		{"$HOME expanded into bash -c", `bash -c "rm -rf $HOME"`, "home directory"},
		{"environment of bash -c", "X=/ bash -c 'rm -rf $X'", "of /"},
		{"printf -v", "printf -v d /; rm -rf $d", "of /"},

		// Shell payloads and here-documents.
		{"bash -c", "bash -c 'rm -rf /'", "of /"},
		{"sh -c", `sh -c "rm -rf /etc"`, "of /etc"},
		{"bundled -xc", "bash -xc 'ls; rm -rf /'", "of /"},
		{"sudo bash -c", "sudo bash -c 'rm -rf /'", "of /"},
		{"/bin/sh -c", "/bin/sh -c 'rm -rf /'", "of /"},
		{"nested -c", `bash -c "bash -c 'rm -rf /'"`, "of /"},
		{"ansi-c -c", `bash -c $'rm\x20-rf /'`, "of /"},
		{"-c of $(echo)", `bash -c "$(echo rm -rf /)"`, "of /"},
		{"heredoc to bash", "bash <<EOF\nrm -rf /\nEOF", "of /"},
		{"quoted heredoc to sh", "sh <<'X'\nls\nrm -rf /\nX", "of /"},
		{"heredoc -", "bash <<-EOF\n\trm -rf /\n\tEOF", "of /"},
		{"heredoc piped to bash", "cat <<EOF | bash\nrm -rf /\nEOF", "of /"},
		{"here-string", "bash <<< 'rm -rf /'", "of /"},
		{"echo to sh", "echo 'rm -rf /' | sh", "of /"},
		{"printf to bash", `printf 'rm -rf /\n' | bash`, "of /"},
		{"printf %s to bash", `printf '%s\n' 'rm -rf /' | bash`, "of /"},
		{"bash <(echo)", "bash <(echo 'rm -rf /')", "of /"},
		{"substitution in heredoc", "cat <<EOF\n$(rm -rf /)\nEOF", "of /"},
		{"xargs sh -c", "xargs sh -c 'rm -rf /'", "of /"},
		{"$0 of sh -c", `sh -c 'eval "$0"' 'rm -rf /'`, "of /"},
		{"bash /dev/stdin", "bash /dev/stdin <<< 'rm -rf /'", "of /"},
		{"source /dev/stdin", "source /dev/stdin <<< 'rm -rf /'", "of /"},
		{". <(echo)", ". <(echo 'rm -rf /')", "of /"},
		{"at here-string", "at now <<< 'rm -rf /'", "of /"},
		{"echo to at", "echo 'rm -rf /' | at now", "of /"},
		{"script -c", "script -c 'rm -rf /' /dev/null", "of /"},
		{"ssh", "ssh localhost 'rm -rf /'", "of /"},
		{"ssh with options", "ssh -p 22 root@host sudo reboot", "reboot"},

		// find and xargs.
		{"find -delete", "find / -delete", "find -delete on /"},
		{"find name -delete", "find /etc -name '*.conf' -delete", "find -delete on /etc"},
		{"find -L", "find -L / -type f -delete", "on /"},
		{"find -exec rm", `find / -exec rm -rf {} \;`, "find -exec rm on /"},
		{"find -exec rm +", "find /usr -exec rm {} +", "find -exec rm on /usr"},
		{"find -exec sh -c", `find . -exec sh -c 'rm -rf /' \;`, "of /"},
		{"find in cwd /", "cd / && find . -delete", "on /"},
		{"xargs rm -rf", "ls | xargs rm -rf", "xargs rm -rf"},
		{"xargs -0 rm -fr", "find . -print0 | xargs -0 rm -fr", "xargs rm -rf"},
		{"xargs -I", "xargs -I{} rm -rf {}", "xargs rm -rf"},
		{"xargs sudo rm", "xargs -n 1 sudo rm -r -f", "xargs rm -rf"},

		// Working directory.
		{"cd / then *", "cd / && rm -rf *", "of /*"},
		{"cd /etc then .", "cd /etc; rm -rf .", "of /etc"},
		{"cd home then ./*", "cd && rm -rf ./*", "home directory"},
		{"cd up", "cd /usr/local/.. && rm -rf lib", "of /usr/lib"},

		// Filesystems and raw block devices.
		{"mkfs.ext4", "mkfs.ext4 /dev/sda1", "mkfs.ext4"},
		{"mkfs -t", "mkfs -t ext4 /dev/sdb", "mkfs"},
		{"sudo mkfs.xfs", "sudo mkfs.xfs -f /dev/nvme0n1", "mkfs.xfs"},
		{"mke2fs", "mke2fs /dev/sda", "mke2fs"},
		{"quoted mkfs", `m"k"fs.ext4 /dev/sda`, "mkfs.ext4"},
		{"dd of", "dd if=/dev/zero of=/dev/sda bs=1M", "/dev/sda (dd of=)"},
		{"dd nvme", "dd if=image.iso of=/dev/nvme0n1", "/dev/nvme0n1"},
		{"dd quoted", `dd of="/dev/vda" if=x`, "/dev/vda"},
		{"dd dm", "dd if=/dev/zero of=/dev/dm-0", "/dev/dm-0"},
		{"dd md", "dd of=/dev/md0 if=/dev/zero", "/dev/md0"},
		{"dd by-id", "dd of=/dev/disk/by-id/ata-X if=x", "/dev/disk/by-id/ata-X"},
		{"dd relative in /dev", "cd /dev && dd if=/dev/zero of=sda", "/dev/sda"},
		{"dd glob", "dd if=/dev/zero of=/dev/sd?", "/dev/sd?"},
		{"redirect", "cat image > /dev/sda", "(redirection >)"},
		{"append", "echo x >> /dev/xvda", "/dev/xvda"},
		{"fd redirect", "cat x 1>/dev/mmcblk0", "/dev/mmcblk0"},
		{"&> redirect", "cat x &> /dev/hda", "/dev/hda"},
		{"redirect alone", "> /dev/sdc", "/dev/sdc"},
		{"tee", "cat x | tee /dev/sdb", "tee on raw block device /dev/sdb"},
		{"shred", "shred -n 3 -z /dev/sda", "shred on raw block device"},
		{"wipefs", "wipefs -a /dev/sda", "wipefs"},
		{"blkdiscard", "blkdiscard /dev/nvme0n1", "blkdiscard"},
		{"fdisk", "fdisk /dev/sda", "fdisk"},
		{"sfdisk", "sfdisk /dev/sda < layout", "sfdisk"},
		{"parted", "parted -s /dev/sda mklabel gpt", "parted"},
		{"cp image", "cp disk.img /dev/sdb", "(cp)"},

		// Processes and power.
		{"kill -9 -1", "kill -9 -1", "signals every process"},
		{"kill -KILL -1", "kill -KILL -1", "signals every process"},
		{"kill -HUP -1", "kill -HUP -1", "signals every process"},
		{"kill -s KILL -1", "kill -s KILL -1", "signals every process"},
		{"kill -1 -1", "kill -1 -1", "signals every process"},
		{"kill -- -1", "kill -- -1", "signals every process"},
		{"sudo kill", "sudo kill -9 -1", "signals every process"},
		{"init 0", "init 0", "init 0"},
		{"init 6", "init 6", "init 6"},
		{"telinit", "telinit 0", "telinit 0"},
		{"shutdown", "shutdown -h now", "shutdown"},
		{"shutdown -r", "shutdown -r +5", "shutdown"},
		{"reboot", "reboot", "reboot"},
		{"sudo reboot", "sudo reboot", "reboot"},
		{"halt", "halt", "halt"},
		{"poweroff path", "/sbin/poweroff -f", "poweroff"},
		{"systemctl poweroff", "systemctl poweroff", "systemctl poweroff"},
		{"systemctl reboot", "systemctl reboot", "systemctl reboot"},
		{"systemctl --force halt", "systemctl --force halt", "systemctl halt"},
		{"systemctl kexec", "systemctl kexec", "systemctl kexec"},
		{"systemctl start target", "systemctl start reboot.target", "reboot.target"},
		{"reboot in substitution", "echo `reboot`", "reboot"},
		{"cryptsetup", "cryptsetup luksFormat /dev/sdb", "luksFormat"},
		{"cryptsetup options", "cryptsetup -q luksFormat --type luks2 /dev/sdb", "luksFormat"},
		{"sysrq reboot", "echo b > /proc/sysrq-trigger", "sysrq-trigger"},
		{"sysrq through tee", "echo o | sudo tee /proc/sysrq-trigger", "sysrq-trigger"},
		{"rsync --delete into /", "rsync -a --delete /tmp/empty/ /", "rsync deleting files of /"},
		{"rsync --remove-source-files", "rsync --remove-source-files -a /etc/ /tmp/x", "rsync deleting files of /etc"},
		{"tar --remove-files", "tar --remove-files -czf x.tgz /etc", "tar --remove-files of /etc"},

		// Fork bombs.
		{"classic", ":(){ :|:& };:", "fork bomb"},
		{"spaced", ":(){ :|: & };:", "fork bomb"},
		{"renamed", "f(){ f|f& };f", "fork bomb"},
		{"named", "bomb() { bomb | bomb & }; bomb", "fork bomb"},
		{"function keyword", "function f { f | f & }; f", "fork bomb"},
		{"function keyword parens", "function f() { f & f; }; f", "fork bomb"},
		{"subshell body", "f() ( f | f & ); f", "fork bomb"},
		{"multi-line", "b() {\n  b | b &\n}\nb", "fork bomb"},
		{"in bash -c", "bash -c ':(){ :|:& };:'", "fork bomb"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := checkShell(t, tc.command)
			if d.Action != permission.Deny || d.Source != permission.SourceHardline {
				t.Fatalf("Check(%q) = %v by %s (%s); want deny by hardline", tc.command, d.Action, d.Source, d.Reason)
			}
			if !strings.HasPrefix(d.Reason, "hardline: ") || !strings.Contains(d.Reason, tc.reason) {
				t.Errorf("Check(%q).Reason = %q; want it to contain %q", tc.command, d.Reason, tc.reason)
			}
			if d.Rule != -1 || d.Matched != "" {
				t.Errorf("Check(%q) Rule, Matched = %d, %q; want -1, \"\"", tc.command, d.Rule, d.Matched)
			}
		})
	}
}

func TestHardlineAllows(t *testing.T) {
	tests := []struct{ name, command string }{
		{"build dir", "rm -rf ./build"},
		{"relative", "rm -rf build/ dist"},
		{"tmp subpath", "rm -rf /tmp/x"},
		{"tmp itself", "rm -rf /tmp"},
		{"var tmp subpath", "rm -rf /var/tmp/cache"},
		{"home subpath", "rm -rf ~/projects/old"},
		{"$HOME subpath", "rm -rf $HOME/.cache/pip"},
		{"deep home path", "rm -rf /home/alice/project/build"},
		{"deep opt path", "rm -rf /opt/app/cache"},
		{"deep usr path", "rm -rf /usr/local/lib/node_modules/foo"},
		{"unknown variable", `rm -rf "$BUILD_DIR"`},
		{"not recursive", "rm -f /etc/motd"},
		{"rm a dir without -r", "rm /etc"},
		{"cd /tmp then *", "mkdir -p /tmp/b && cd /tmp/b && rm -rf *"},
		{"git rm", "git rm -rf --cached ."},
		{"docker --rm", "docker run --rm -v /:/host alpine ls"},
		{"echo double-quoted", `echo "rm -rf /"`},
		{"echo single-quoted", "echo 'rm -rf /'"},
		{"printf not piped", `printf '%s\n' 'rm -rf /'`},
		{"echo with substitution text", `echo "$(date) rm -rf /"`},
		{"grep mkfs", "grep mkfs notes.txt"},
		{"grep pattern", `grep -r "rm -rf /" .`},
		{"commit message", `git commit -m "guard against rm -rf /"`},
		{"python string", `python3 -c "print('rm -rf /')"`},
		{"quoted heredoc to file", "cat <<'EOF' > notes.md\nrm -rf /\nEOF"},
		{"unquoted heredoc without substitution", "cat <<EOF\nrun rm -rf / to wipe\nEOF"},
		{"kill a pid", "kill -9 1234"},
		{"kill -1 as HUP to a pid", "kill -1 1234"},
		{"kill probe", "kill -0 -1"},
		{"kill list", "kill -l"},
		{"kill job", "kill %1"},
		{"dd read a device", "dd if=/dev/sda of=disk.img bs=1M"},
		{"dd to a file", "dd if=/dev/zero of=./file bs=1M count=1"},
		{"read a device", "cat /dev/sda | head -c 512 | xxd"},
		{"dev null", "echo hi > /dev/null"},
		{"stderr null", "make 2>/dev/null"},
		{"to stderr", "echo x >&2"},
		{"fdisk -l", "fdisk -l /dev/sda"},
		{"parted print", "parted /dev/sda print"},
		{"sfdisk -l", "sfdisk -l /dev/sda"},
		{"find -delete here", "find . -name '*.o' -delete"},
		{"find -delete tmp", "find /tmp/x -delete"},
		{"find / print", "find / -name foo -print"},
		{"find etc", "find /etc -name '*.conf'"},
		{"xargs rm -f", "ls | xargs rm -f"},
		{"xargs grep", "find . -name '*.go' | xargs grep foo"},
		{"systemctl status", "systemctl status nginx"},
		{"systemctl restart", "systemctl restart nginx"},
		{"man shutdown", "man shutdown"},
		{"echo reboot", "echo reboot"},
		{"which reboot", "which reboot"},
		{"command -v", "command -v reboot"},
		{"type", "type reboot"},
		{"script named like reboot", "./reboot-check.sh && shutdown-monitor --once"},
		{"timeout ls", "timeout 5 ls /"},
		{"sudo apt", "sudo apt-get install -y curl"},
		{"bash -c echo", "bash -c 'echo hi'"},
		{"script file", "sh script.sh"},
		{"function not recursive", "f() { echo hi; }; f | cat"},
		{"function called twice outside", "f() { echo; }; f & f"},
		{"tar etc", "tar -czf backup.tgz /etc"},
		{"cryptsetup status", "cryptsetup status root"},
		{"cp to tmp", "cp disk.img /tmp/disk.img"},
		{"nice make", "nice -n 5 make -j8"},
		{"env grep", "env | grep HOME"},
		{"list home", "ls ~/*"},
		{"shred a file", "shred -u secret.txt"},
		{"tee a log", "make | tee /tmp/out.log"},
		{"mkswap a file", "mkswap /swapfile"},
		{"variable subpath", "d=/tmp/x; rm -rf $d"},
		{"function on a build dir", `f() { rm -rf "$1"; }; f ./build`},
		{"loop over relative dirs", "for f in a b; do rm -rf $f; done"},
		{"unset variable", `unset d; rm -rf "$d/build"`},
		{"recursive function", "f() { f; }; f"},
		{"mutually recursive functions", "f() { g; }; g() { f; }; f"},
		{"rsync --delete elsewhere", "rsync -a --delete src/ dst/"},
		{"rsync from etc", "rsync -av /etc/ /backup/etc/"},
		{"strace ls", "strace -f ls /"},
		{"flock make", "flock /tmp/l make"},
		{"ssh uptime", "ssh host uptime"},
		{"parallel gzip", "parallel gzip ::: *.log"},
		{"parallel arguments are not commands", "parallel echo ::: reboot"},
		{"a file named like sysrq", "echo b > /tmp/sysrq-trigger"},
		{"read sysrq", "cat /proc/sysrq-trigger"},
		{"env -C /tmp", "env -C /tmp rm -rf *"},
		{"control byte is not home", "rm -rf \x01"},
		{"decoded control byte is not home", `rm -rf $'\x01' "$(printf '\001')"`},
		{"test brackets", "[ -d /tmp ] && echo ok"},
		{"test brackets with a variable", `[ "$x" = y ] || exit 1`},
		{"path to [", "/usr/bin/[ 1 ]"},
		{"double brackets", "[[ -f x ]] && rm -rf build"},
		{"empty", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := checkShell(t, tc.command)
			if d.Source == permission.SourceHardline {
				t.Errorf("Check(%q) = %v (%s); want no hardline denial", tc.command, d.Action, d.Reason)
			}
		})
	}
}

// TestHardlineBounds: oversized and pathological commands are decided
// quickly, and what cannot be analysed is denied.
func TestHardlineBounds(t *testing.T) {
	tests := []struct {
		name    string
		command string
		deny    bool
	}{
		{"just over the limit", strings.Repeat("a", permission.MaxCommandLen+1), true},
		{"at the limit", strings.Repeat("a", permission.MaxCommandLen), false},
		{"deep $( )", strings.Repeat("$(", 100) + "ls" + strings.Repeat(")", 100), true},
		{"deep eval", strings.Repeat("eval ", 40) + "ls", true},
		{"bash -c within bounds", nestShells("rm -rf /", 6), true},
		{"backquotes within bounds", nestBackquotes("rm -rf /", 6), true},
		{"harmless nesting", nestShells("ls", 6) + ";" + nestBackquotes("ls", 3), false},
		// mvdan.cc/sh does not parse backquotes nested four deep (bash does):
		// a parse error, so denied.
		{"backquotes nested four deep", nestBackquotes("ls", 4), true},
		{"brace bomb", "echo " + strings.Repeat("{a,b}", 20), true},
		{"many commands", strings.Repeat("ls;", 20000), false},
		// Unbalanced: the shell would reject it, and a command that does not
		// parse is denied.
		{"many parens", strings.Repeat("(", 30000), true},
		{"deep arithmetic", strings.Repeat("$[", 30000), true},
		{"deep arithmetic parens", "x=" + strings.Repeat("$((1+(", 8000), true},
		{"deep quoted substitutions", strings.Repeat(`"$(`, 20000) + strings.Repeat(`)"`, 20000), true},
		{"deep default values", "echo " + strings.Repeat("${x:-", 10000) + strings.Repeat("}", 10000), true},
		{"deep ifs", strings.Repeat("if ", 20000), true},
		{"many nested arithmetic words", strings.Repeat("echo $(( (((((((((1))))))))) ));", 1500), false},
		{"many transforming expansions", "x=/tmp/abc; " + strings.Repeat(`echo "${x%%/*}${x//a/b}${x:1:2}";`, 1000), false},
		// A value over 64 KiB is unknown, but the bytes expanded on the way
		// there are over the work bound.
		{"value doubling", "x=aaaaaaaaaaaaaaaa; " + strings.Repeat("x=$x$x; ", 40) + "echo $x", true},
		{"replacement bomb", "x=" + strings.Repeat("a", 30000) + `; echo "${x//a/$x}"`, false},
		{"huge printf width", `echo "$(printf '%999999999d' 1)"`, false},
		{"many worlds", "for a in 1 2 3 4 5 6 7 8; do for b in 1 2 3 4 5 6 7 8; do for c in 1 2 3 4 5 6 7 8; do echo $a$b$c; done; done; done", false},
		{"loops in loops", strings.Repeat("while :; do ", 40) + "x=$((x+1))" + strings.Repeat("; done", 40), false},
		{"functions calling functions", "f0() { :; }; " + funcChain(14) + "f14", false},
		{"functions nested too deep", "f0() { :; }; " + funcChain(20) + "f20", true},
		{"huge sequence", "echo {1..9223372036854775807}", false},
		{"huge sequence in a path", "rm -rf /home/{1..100000}", true},
		{"many quotes", strings.Repeat(`"'`, 30000), false},
		{"many wrappers", strings.Repeat("sudo -h ", 8000) + "ls", true},
		{"nested echo pipes", strings.Repeat("echo '", 12) + "ls" + strings.Repeat("' | sh", 12), false},
		{"unterminated quote", "rm -rf / 'x", true},
		{"unterminated substitution", "echo $(rm -rf /", true},
		{"unterminated heredoc", "bash <<EOF\nrm -rf /", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			d := checkShell(t, tc.command)
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("Check took %v; want well under 2s", took)
			}
			if got := d.Source == permission.SourceHardline; got != tc.deny {
				t.Errorf("hardline denial = %v (%s); want %v", got, d.Reason, tc.deny)
			}
		})
	}
}

// funcChain defines f1…fn, each calling the one before twice.
func funcChain(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "f%d() { f%d; f%d; }; ", i, i-1, i-1)
	}
	return b.String()
}

// nestShells wraps command in n levels of bash -c '…'.
func nestShells(command string, n int) string {
	for range n {
		command = "bash -c '" + strings.ReplaceAll(command, "'", `'\''`) + "'"
	}
	return command
}

// nestBackquotes nests command in n levels of `…`, escaping inner backquotes.
func nestBackquotes(command string, n int) string {
	for range n {
		command = "echo `" + strings.NewReplacer(`\`, `\\`, "`", "\\`").Replace(command) + "`"
	}
	return command
}
