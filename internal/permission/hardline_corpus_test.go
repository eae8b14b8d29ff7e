package permission_test

import (
	"strings"
	"testing"

	"github.com/agentd/agentd/internal/permission"
)

// everyday is what coding agents run all day, one command per line (a
// here-document continues to its delimiter). The floor cannot be
// overridden, so none of it may be denied.
const everyday = `go build ./...
go test -race -count=1 ./...
npm install && npm run build
pip install -r requirements.txt
python -m pytest -q tests/
make -j4 CC=clang
cargo build --release
docker build -t app:dev .
docker compose up -d
docker rm -f $(docker ps -aq)
docker system prune -af
kubectl get pods -A
kubectl delete pod web-0
git log --oneline -20
git diff --stat HEAD~3
git add -A && git commit -m "fix: guard rm -rf / in scripts"
git checkout -b feature/x
git stash && git pull --rebase && git stash pop
git clean -fdx
curl -sSL https://example.com/data.json | jq .
wget -qO- https://example.com
tar xzf release.tgz -C /tmp
unzip bundle.zip -d out
chmod +x script.sh && ./script.sh
ls -la /etc
cat /etc/os-release
find . -type f -name '*.py' | xargs wc -l
find . -name __pycache__ -type d -exec rm -rf {} +
find /tmp -mtime +7 -delete
grep -rn "func main" --include=*.go .
sed -i 's/foo/bar/g' config.yaml
awk '{print $1}' access.log | sort | uniq -c | sort -rn | head
tail -f server.log &
ps aux | grep -v grep | grep node
kill %1
kill -TERM $(cat server.pid)
pkill -f "node server.js"
killall node
echo $PATH
export PATH=$PATH:/usr/local/go/bin
source venv/bin/activate
. ~/.bashrc
python3 -c 'import sys; print(sys.version)'
node -e 'console.log(process.version)'
cd src && go vet ./...
mkdir -p build && cd build && cmake .. && make
rm -rf build dist *.egg-info
rm -f *.o core
rm -rf node_modules package-lock.json
rm -rf ~/.npm/_cacache
rm -rf /tmp/*
rm -rf /var/tmp/build-*
rm -rf /usr/local/go && tar -C /usr/local -xzf go1.26.linux-amd64.tar.gz
sudo rm -rf /var/lib/apt/lists/*
rm -rf /opt/conda/pkgs/cache
rm -rf /root/.cache/pip
(cd frontend && npm ci)
for f in *.go; do gofmt -l "$f"; done
while read -r line; do echo "$line"; done < input.txt
if [ -f go.mod ]; then go mod tidy; fi
test -d .git && git status
[ -z "$CI" ] || exit 0
[[ $x == y* ]] && echo match
case "$1" in start) ./run.sh;; stop) kill "$(cat pid)";; esac
apt-get update && apt-get install -y build-essential
sudo systemctl restart nginx
systemctl status docker --no-pager
journalctl -u nginx --since today
df -h /
du -sh /var/log/*
free -m
top -bn1 | head -20
lsblk
mount | grep sda
blkid /dev/sda1
fdisk -l
parted -l
sudo fdisk -l /dev/nvme0n1
dd if=/dev/urandom of=test.bin bs=1M count=10
dd if=/dev/sda of=mbr.bin bs=512 count=1
openssl rand -hex 32
ssh-keygen -t ed25519 -f key -N ''
rsync -av --delete ./dist/ deploy@server:/var/www/app/
scp build.tgz host:/tmp/
ssh host 'systemctl status app'
env | sort
printenv HOME
which python3
type -a ls
command -v docker >/dev/null || echo missing
xargs -n1 echo < list.txt
seq 1 10 | xargs -I{} echo {}
time make test
timeout 60 npm test
nohup ./server > server.log 2>&1 &
sleep 5 && curl localhost:8080/health
tmp=$(mktemp -d) && cd "$tmp" && trap 'rm -rf "$tmp"' EXIT
rm -rf "$tmp"
echo '{}' | jq .
base64 -d blob.b64 > blob.bin
sha256sum *
crontab -l
ln -sf /usr/bin/python3 /usr/local/bin/python
cp -r src/ /tmp/backup/
chown -R "$USER:$USER" .
chmod -R u+w .
ulimit -n 4096
set -euo pipefail
alias ll='ls -la'
history | tail
:
true
sudo -v
su - postgres -c "psql -c 'select 1'"
pg_dump app > app.sql
redis-cli ping
terraform plan -out tf.plan
gh pr create --fill
echo "reboot required" | tee -a notes.txt
printf 'rm -rf / is dangerous\n' > warning.txt
cat > notes.md <<'END'
Never run rm -rf / or mkfs on /dev/sda.
END
python3 - <<'END'
import shutil
print("ok")
END
bash -c 'for i in 1 2 3; do echo $i; done'
sh -c "cd /tmp && ls"
strace -f -o trace.txt ./app
flock /tmp/build.lock make
watch -n 5 'kubectl get pods'
parallel gzip ::: *.log
env -C /tmp ls
find / -name '*.conf' -print 2>/dev/null
find /etc -maxdepth 1 -type f | head
shutdown_check() { echo fine; }; shutdown_check
rm -rf ./reboot ./shutdown`

func TestHardlineAllowsEverydayCommands(t *testing.T) {
	var commands []string
	lines := strings.Split(everyday, "\n")
	for i := 0; i < len(lines); i++ {
		c := lines[i]
		if j := strings.Index(c, "<<'"); j >= 0 {
			delim := strings.Trim(c[j+3:], "'")
			for i+1 < len(lines) {
				i++
				c += "\n" + lines[i]
				if lines[i] == delim {
					break
				}
			}
		}
		commands = append(commands, c)
	}
	if len(commands) < 130 {
		t.Fatalf("corpus has %d commands; want at least 130", len(commands))
	}
	for _, c := range commands {
		t.Run(c, func(t *testing.T) {
			if d := checkShell(t, c); d.Source == permission.SourceHardline {
				t.Errorf("Check(%q) = %v (%s); want no hardline denial", c, d.Action, d.Reason)
			}
		})
	}
}
