package permission

import (
	"regexp"
	"testing"
)

// TestPresetTranslations checks the RE2 translations of Agentao's preset
// patterns against what Python's re.search says (the expected values were
// computed with CPython 3.11 on the original patterns). The Unicode rows are
// where Python's \s, \w and \b differ from RE2's.
func TestPresetTranslations(t *testing.T) {
	readOnly := regexp.MustCompile(shellReadOnlyRE)
	danger := regexp.MustCompile(shellDangerRE)
	write := regexp.MustCompile(shellSensitiveWriteRE)
	tests := []struct {
		command                 string
		readOnly, danger, write bool
	}{
		{"ls", true, false, false},
		{"ls -la", true, false, false},
		{"ls\n", true, false, false},
		{"ls\n\n", false, false, false},
		{"ls -la | head", false, false, false},
		{"ls; rm x", false, false, false},
		{"ls && make", false, false, false},
		{"ls `x`", false, false, false},
		{"ls $HOME", false, false, false},
		{"ls > out", false, false, false},
		{"ls < in", false, false, false},
		{"lsx", false, false, false},
		{"ls-files", true, false, false},
		{"ls\u00e9", false, false, false},
		{"ls\u00e9", false, false, false},
		{"ls_", false, false, false},
		{"cat README.md", true, false, false},
		{"cat\tfile", true, false, false},
		{"catalog", false, false, false},
		{"echo hi", true, false, false},
		{"echo $PATH", false, false, false},
		{"pwd", true, false, false},
		{"which go", true, false, false},
		{"file a.bin", true, false, false},
		{"head -n 5 x", true, false, false},
		{"tail -f log", true, false, false},
		{"wc -l x", true, false, false},
		{"diff a b", true, false, false},
		{"grep -r TODO .", true, false, false},
		{"du -sh .", true, false, false},
		{"df -h", true, false, false},
		{"ps aux", true, false, false},
		{"env", true, false, false},
		{"envsubst", false, false, false},
		{"git status", true, false, false},
		{"git status --short", true, false, false},
		{"git log --oneline", true, false, false},
		{"git diff HEAD~1", true, false, false},
		{"git show HEAD", true, false, false},
		{"git stash list", true, false, false},
		{"git shortlog", true, false, false},
		{"git describe", true, false, false},
		{"git blame x", true, false, false},
		{"git ls-files", true, false, false},
		{"git ls-tree HEAD", true, false, false},
		{"git rev-parse HEAD", true, false, false},
		{"git config --get user.name", true, false, false},
		{"git config --global x y", false, false, false},
		{"git push", false, false, false},
		{"git checkout .", false, false, false},
		{"git statusx", true, false, false},
		{"git diff --output=/etc/passwd", true, false, false},
		{" ls", false, false, false},
		{"find . -delete", false, false, false},
		{"git  status", false, false, false},
		{"rm -rf build", false, true, false},
		{"rm  -rf x", false, true, false},
		{"rm\t-rf x", false, true, false},
		{"rm\u00a0-rf x", false, true, false},
		{"rm\u000b-rf x", false, true, false},
		{"rm -fr x", false, false, false},
		{"rm -r -f x", false, false, false},
		{"sudo ls", false, true, false},
		{"sudo\tls", false, true, false},
		{"sudo\u3000ls", false, true, false},
		{"pseudo x", false, false, false},
		{"sudoku", false, false, false},
		{"mkfs.ext4 /dev/sda", false, true, false},
		{"grep mkfs notes", true, true, false},
		{"dd if=/dev/zero of=x", false, true, false},
		{"dd  if=a", false, true, false},
		{"dd\u2003if=a", false, true, false},
		{"add if=x", false, true, false},
		{"echo x > ~/.bashrc", false, false, true},
		{"echo x >> ~/.bashrc", false, false, true},
		{"echo x >~/.zshrc", false, false, true},
		{"echo x > $HOME/.profile", false, false, true},
		{"echo x > ${HOME}/.bash_profile", false, false, true},
		{"echo x > ~/.bashrc.bak", false, false, false},
		{"echo x > ~/.bashrc-old", false, false, false},
		{"echo x > ~/.bashrc;", false, false, true},
		{"echo x > ~/.bashrc\u00a0", false, false, true},
		{"echo x > '~/.bashrc'", false, false, false},
		{"tee ~/.zprofile", false, false, true},
		{"tee -a ~/.netrc", false, false, true},
		{"xtee ~/.netrc", false, false, false},
		{"\u00e9tee ~/.netrc", false, false, false},
		{"_tee ~/.netrc", false, false, false},
		{"cat x | tee -a ~/.pgpass", false, false, true},
		{"cp x ~/.npmrc", false, false, true},
		{"cp -f x ~/.npmrc", false, false, true},
		{"mv x $HOME/.pypirc", false, false, true},
		{"cp x y ~/.npmrc", false, false, false},
		{"cp ~/.npmrc x", false, false, false},
		{"scp x ~/.npmrc", false, false, false},
		{"sed -i s/a/b/ ~/.bashrc", false, false, true},
		{"sed -i.bak s/a/b/ ~/.bashrc", false, false, true},
		{"sed -e s/a/b/ -i ~/.bashrc", false, false, true},
		{"sed s/a/b/ ~/.bashrc", false, false, false},
		{"sed -n p ~/.bashrc", false, false, false},
		{"sed -i s/a/b/ ~/.bashrcx", false, false, false},
		{"cat ~/.bashrc", true, false, false},
		{"echo x > ~/x/.bashrc", false, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.command, func(t *testing.T) {
			if got := readOnly.MatchString(tc.command); got != tc.readOnly {
				t.Errorf("read-only allowlist matches %q = %v; want %v", tc.command, got, tc.readOnly)
			}
			if got := danger.MatchString(tc.command); got != tc.danger {
				t.Errorf("danger pattern matches %q = %v; want %v", tc.command, got, tc.danger)
			}
			if got := write.MatchString(tc.command); got != tc.write {
				t.Errorf("credential-file write pattern matches %q = %v; want %v", tc.command, got, tc.write)
			}
		})
	}
}
