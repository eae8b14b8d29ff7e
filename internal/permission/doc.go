// Package permission decides, for each planned tool call, whether to allow
// it, deny it or ask the user: Agentao's permission rules (reference §4.4),
// versioned, above a hard floor of unrecoverable shell commands.
//
// # Use
//
// A rule version is compiled once by [Parse] (or a bare preset by [Preset])
// into an immutable [Rules], safe for concurrent use. [Rules.Check] decides
// one [Call] and returns a [Decision] that says what matched and why, for the
// audit log; it never fails and does no I/O. [Rules.Snapshot] is Agentao's
// active_permissions record, to log at session start. [Rules.WithMode]
// switches the preset of a version. A nil *Rules denies every call.
//
// # Version files
//
// A version is the file .agentao/permissions/<version>.json:
//
//	{
//	  "mode": "workspace-write",
//	  "rules": [
//	    {"tool": "run_shell_command", "args": {"command": "^git "}, "action": "allow"},
//	    {"tool": "mcp_github_.*", "action": "ask"},
//	    {"tool": "web_fetch", "domain": {"url_arg": "url", "blocklist": [".corp.example.com", "10."]}, "action": "deny"}
//	  ]
//	}
//
// "mode" is one of read-only, workspace-write (the default), full-access and
// plan. A rule has:
//
//   - tool (required): a regular expression that must match the whole tool
//     name, as Python's re.fullmatch: "mcp_github_*" matches "mcp_github"
//     and "mcp_github___" but not "mcp_github_get_issue"; write
//     "mcp_github_.*". "*" alone matches every tool.
//   - args: argument name to regular expression, searched (unanchored) in
//     the argument's string form; all must match. A missing argument is "";
//     a string is itself; any other value is its compact JSON (120, true,
//     null, {"a":1}) where Agentao would use Python's str(). Names are the
//     tools' real ones: write_file's path is "file_path", so a rule on
//     "path" never matches it.
//   - domain: the URL in argument url_arg (default "url") must have its host
//     on the allowlist or on the blocklist (the two lists behave the same;
//     use two rules to allow some hosts and deny others). An entry with a
//     leading dot matches the domain and its subdomains (".github.com":
//     github.com and api.github.com, not evilgithub.com); any other entry
//     matches one host exactly. Hosts are compared in lower case, without
//     port, user information, IPv6 brackets or a trailing dot; "https://" is
//     assumed when the URL has no "://"; a URL that does not parse never
//     matches. Unlike Agentao, an entry of digits and dots ending in a dot,
//     like "10." or "192.168.", matches IPv4 literals that start with it
//     (Agentao compares it to the whole host, so it never matches): it
//     matches 10.0.0.1, not 100.0.0.1 or 10.example.com. These are checks on
//     the literal host only; the fetch tool's own SSRF guard must still
//     resolve names and check addresses (0x7f.1, 2130706433 and DNS names of
//     private addresses are not caught here).
//   - action: "allow", "deny" or "ask", in any letter case. A missing
//     action means ask, as in Agentao.
//
// When a rule has both args and domain, both must match (Agentao ignores
// args when a domain block is present).
//
// Regular expressions are Go's RE2, not Python's: no lookaround or
// backreferences (Parse rejects them), \d \w \s \b are ASCII, and $ matches
// only at the very end. Matching is linear in the input, so no rule can be
// made to backtrack.
//
// Parse reports every problem, each naming the rule index and field, joined
// with errors.Join: malformed JSON, unknown or duplicate fields, wrong types,
// a missing or empty tool, invalid regular expressions, host entries that
// are URLs, wildcards or host:port, an empty domain block, and unknown modes
// or actions. Agentao read an unknown action ("alow", "deny " …) as ask,
// which silently allows every tool that needs no confirmation; here it is an
// error.
//
// # Decision order
//
// The first match wins, in this order:
//
//  1. The hardline floor (run_shell_command only): Deny. No rule and no
//     mode can override it.
//  2. Read-only mode: a call whose tool is not ReadOnly is Deny. agentd
//     enforces read-only for real (in Agentao only the CLI did).
//  3. The rules: in read-only and workspace-write mode the version's rules
//     then the preset's; in full-access and plan mode the preset's rules
//     then the version's (so a version cannot weaken plan, and cannot
//     restrict full-access).
//  4. No rule matched: Ask if the call's Confirm is set, else Allow.
//
// An Ask for a call whose Confirm is false becomes Allow (Agentao only
// prompts for tools that require confirmation); the Reason says so.
//
// # Presets
//
// The presets are Agentao's, rule for rule (see preset.go, which documents
// how each Python regular expression was translated to an RE2 one that
// matches the same strings):
//
// workspace-write:
//
//	write_file allow; replace allow
//	run_shell_command {command: read-only allowlist} allow
//	  (git status|log|diff|show|stash list|shortlog|describe|blame|ls-files|ls-tree|rev-parse|config --get,
//	   ls cat echo pwd which file head tail wc diff grep du df ps env; no ; & | ` $ < > or newline after)
//	run_shell_command {command: rm\s+-rf|sudo\s|mkfs|dd\s+if=} deny
//	run_shell_command {command: > >> tee cp mv sed -i into ~/.bashrc .zshrc .profile .bash_profile
//	  .zprofile .netrc .pgpass .npmrc .pypirc} ask
//	run_shell_command ask
//	web_fetch {url host in .github.com .docs.python.org .wikipedia.org r.jina.ai .pypi.org .readthedocs.io} allow
//	web_fetch {url host in localhost 127.0.0.1 0.0.0.0 169.254.169.254 .internal .local ::1} deny
//	web_fetch ask; web_search ask
//
// plan:
//
//	plan_save allow; plan_finalize allow
//	write_file deny; replace deny; save_memory deny; todo_write deny
//	run_shell_command {command: read-only allowlist} allow
//	run_shell_command {command: rm\s+-rf|sudo\s|mkfs|dd\s+if=} deny
//	run_shell_command deny
//	the four web rules of workspace-write
//
// full-access: * allow. read-only: no rules (step 2 enforces it).
//
// The read-only shell allowlist is Agentao's and so are its gaps: for
// example "git diff --output=FILE" writes a file, and "env" prints the
// environment. Add rules to close them if that matters.
//
// # The hardline floor
//
// The floor parses run_shell_command's "command" as bash with
// mvdan.cc/sh/v3/syntax and resolves its words with mvdan.cc/sh/v3/expand,
// the way the shell would: parameter expansion in every form (${x:-y},
// ${x%%pat}, ${x#…}, ${x/a/b}, ${x:off:len}, ${#x}, ${!x}, ${x^^}, arrays,
// $@ and $1…), tilde, brace and arithmetic expansion, quote removal, field
// splitting on IFS, and globs, extended ones included (/@(etc), /!(tmp)). It
// runs nothing and reads no file: a glob is kept as a pattern and matched
// against the protected paths the floor knows, and a command substitution
// is resolved only when it is one command whose output the floor knows
// (echo, printf, mktemp, pwd, which, command -v, dirname, basename); any
// other output is unknown. A command that does not parse is denied, with the
// parser's error: the shell would run what comes before the error.
//
// It then looks at every command the script would run: in substitutions,
// in here-documents that are not quoted, in function bodies (at their
// definition, and at each call with its arguments), in both branches of if,
// case, && and ||, in loops (run again if a pass changed a value), behind
// wrappers (sudo and doas with their options and NAME=VALUE, env with
// assignments, -C, -u and -S, nice, ionice, chrt, taskset, timeout, stdbuf,
// exec, command, builtin, nohup, setsid, busybox, time, pkexec, chroot,
// runuser, xargs, watch, find -exec; and, trying every non-option word as
// the command, strace, ltrace, unshare, nsenter, systemd-run, numactl,
// prlimit, cgexec, firejail, flock, sg, parallel), and in scripts handed to
// another shell (sh/bash/dash/zsh/… -c with its $0 $1 …, su/runuser/
// script/flock -c, eval in the current shell, trap, alias, mapfile -C,
// ssh's command, a here-document, here-string or /dev/stdin fed to a shell,
// to source or to at, echo/printf piped into one, bash <(echo …), source
// <(echo …)). Command names are compared by base name, in lower case, and a
// glob in a name (/bin/r?) is tried against every command the floor knows.
//
// What the floor knows of values:
//
//   - A variable the command assigns (NAME=, export/declare/local/readonly,
//     for and select loops, set --, shift, printf -v, ${x:=v}, arithmetic,
//     assignments before a command for that command) holds what the
//     assignment gives it. Where control flow leaves several candidate
//     values (x=/tmp in one branch, x=/ in the other; a for loop's list), the
//     command that uses it is analysed with each (at most 64 combinations).
//     cd, pushd and popd move the working directory the same way, and PWD
//     and OLDPWD follow. Subshells, pipelines and background jobs change
//     nothing outside them; a function changes its caller's variables
//     unless they are local. A new shell (bash -c) may not see a variable
//     that was not exported.
//   - A variable the command did not assign comes from agentd's
//     environment: its value is the operator's, and a plain reference to it
//     is taken as what the operator meant ("$BUILD_DIR/out", "$tmp"). $HOME,
//     ~ and ~user are the home directory. But the command chooses which
//     variable and what surrounds it, so an operator's value is unknown once
//     transformed (${PATH:0:1}, ${HOME%/*}), followed by ".." ("$TMPDIR/.."),
//     read as a command name (it is tried as a shell, eval, a wrapper and
//     each command the floor checks), or used after a literal prefix as a
//     path ("/home/$USER" is any home directory, "/$X" any top-level
//     directory); and a test of it (${x:-/}, ${x:+/}) may find it unset.
//   - Unknown: a command's output other than the above, what read, mapfile
//     and getopts assign, bash's own changing variables ($?, $RANDOM,
//     BASH_REMATCH, DIRSTACK…), the result of an expansion that involves an
//     unknown or environment value, arithmetic on such values, every
//     variable after a declaration or unset of a name the floor cannot tell
//     (declare "$x"), a numeric brace sequence of more than 64 numbers, and
//     every field of a word split by an unknown IFS.
//
// An unknown value denies ("treated as unknown and denied", in every mode,
// full-access included) where it could make the command destroy something:
// as a command name, or a script run by eval, sh -c and the like; as any
// argument of rm (it may be -r and /); as a path or expression of find (it
// may be -delete); as a path that rsync --delete, rsync
// --remove-source-files or tar --remove-files empties; as the target of cd
// (then any relative path deleted is unknown); as a file written by a
// redirection, dd of=, tee, cp, shred, wipefs, blkdiscard, mkswap or a
// partitioning tool (unless its name ends in a literal extension: no block
// device name has a dot, so > "build-$(date +%F).log" is allowed); and as an
// argument of systemctl, loginctl, init, telinit, cryptsetup or diskutil.
// Elsewhere it is harmless and allowed: echo "$(date)", grep "$x" file.
//
// It denies:
//
//   - a recursive rm (-r, -R, --recursive, any position) of /, of a system
//     directory (/bin /boot /dev /etc /lib /lib64 /opt /proc /root /sbin /srv
//     /sys /usr /var), of /home, a home directory (/home/NAME, ~, ~NAME,
//     $HOME) or a directory directly under /usr; or of a glob that covers
//     one of them (/*, /e?c, /@(etc), /!(tmp), /etc/*, ~/*, /home/*).
//     Deeper paths are allowed: /tmp/x, /tmp itself, /var/tmp/x, /etc/nginx,
//     ~/project and /home/NAME/project are recoverable or the workspace's
//     business.
//   - find on such a path with -delete or -exec/-execdir/-ok rm; rsync
//     --delete into one (or --remove-source-files out of one); tar
//     --remove-files of one; xargs … rm with both recursive and force flags
//     (whatever the input).
//   - mkfs, mkfs.*, mke2fs; dd of=, a redirection (> >> >| &> <> >&), tee,
//     shred, wipefs, blkdiscard, mkswap, cp, and fdisk/sfdisk/cfdisk/gdisk/
//     sgdisk/parted (unless only listing) onto a raw block device: /dev/sd*,
//     nvme*, vd*, xvd*, mmcblk*, hd*, dm-*, md*, disk*, rdisk*, and
//     /dev/disk/…, /dev/mapper/…, /dev/block/….
//   - kill of pid -1 with any signal but 0; killall5; init or telinit 0 or 6;
//     shutdown, reboot, halt, poweroff; systemctl or loginctl poweroff,
//     reboot, halt, kexec, soft-reboot (or starting their targets); a write
//     to /proc/sysrq-trigger; cryptsetup luksFormat, erase or luksErase;
//     destructive diskutil verbs.
//   - a fork bomb: a function that runs itself in a pipeline or in the
//     background (:(){ :|:& };:, f(){ f|f& };f, function f { f & f; }).
//   - an unknown value where it matters (above).
//   - what it cannot analyse: a command that does not parse, a command
//     longer than [MaxCommandLen] bytes, nesting deeper than 16 levels of
//     substitutions, shells and function calls (or a few hundred levels of
//     syntax for the parser), more than 1 MiB of nested shell text and
//     expanded values, about a million steps of analysis, or a brace
//     expansion of more than 1024 words.
//
// It does not deny what only looks alike: echo "rm -rf /", grep mkfs
// notes.txt, kill -9 1234, rm -rf ./build, or a quoted here-document given
// to cat.
//
// Known limits:
//
//   - scripts it cannot see: files (bash script.sh, source), encoded text
//     (base64 -d | sh), downloads (curl … | sh, bash <(curl …)), and other
//     interpreters (python -c, perl -e); variables set by a sourced file.
//   - kill with a pid from a file or a command (kill "$(cat server.pid)") is
//     allowed: that is how servers are stopped, and the value is unknown.
//   - operations outside the list above: chmod -R or chown -R on /, moving
//     a system directory away, writing to /etc/passwd, a container that
//     mounts / (docker run -v /:/host … rm -rf /host), fork bombs that are
//     not shell functions (perl -e 'fork while fork').
//   - rm -rf "$X"/ where X comes from the environment and may be empty is
//     not denied: a floor false positive cannot be overridden, and
//     workspace-write and plan deny rm -rf by rule anyway.
//   - false positives it accepts: an unknown value in a position above is
//     denied even when it would be harmless (rm -rf "build-$(date +%s)",
//     eval "$(ssh-agent -s)", cd "$(git rev-parse --show-toplevel)" && rm
//     -rf build); a command is known by its base name, so a project script
//     called ./reboot or ./init (with 0 or 6) is denied like the real one; a
//     glob as a command name is tried as every known command; "find / …
//     -delete" is denied whatever the filter; {c..d} of characters that are
//     not both letters is expanded as zsh does; backquotes nested four deep
//     or more do not parse with mvdan.cc/sh (bash accepts them) and are
//     denied.
//
// The floor applies to the tool named run_shell_command only. It is a guard
// against accidents and prompt injection, not a sandbox: the shell sandbox is
// the real wall.
package permission
