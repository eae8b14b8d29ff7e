#!/usr/bin/env bash
# The Kubernetes checks of deploy/k8s, with real tools and a real cluster
# started here and torn down at the end:
#
#   1. render the base and the CI overlay with kustomize;
#   2. the config tree (AGENTAO.md, skills/, .agentao/, instructions/) and the
#      agentd-config ConfigMap hold the same files;
#   3. kubeconform -strict against schemas generated from Kubernetes' OpenAPI
#      (local files only), and it does reject an unknown field;
#   4. kubectl apply --dry-run=server against a real kube-apiserver (etcd from
#      Debian), and it does reject an invalid value;
#   5. a one-node cluster (controller-manager, scheduler, kubelet, containerd,
#      CNI bridge, kube-proxy in iptables mode, CoreDNS as the cluster DNS):
#      the CI overlay runs 3 replicas Ready on hostPath volumes, as one fleet:
#      in a pod, agentd-headless and agentd-N.agentd-headless resolve and
#      answer; the agentd Service answers on its ClusterIP from this machine;
#      the 3 pods form one fleet with one leader; a session created through
#      the Service is served through every pod; a halt through the Service
#      reaches every pod within 2 s; with the leader pod deleted, and then
#      with the leader's agentd killed (SIGKILL), writes through the Service
#      resume within 10 s and the pod rejoins; then a session is opened on
#      each pod with a [[hang]] turn in flight, `kubectl rollout restart`, and
#      after the rollout every session is there (reached through the Service),
#      its history valid, the interrupted turn cancelled with reason shutdown,
#      a new turn works, and every pod serves the same version history; and
#      after every pod is deleted at once, the fleet comes back, serves the
#      same sessions and history, and takes a write.
#      Measured times are printed (TIMING lines and the checks' own output).
#
#   scripts/ci-tools.sh && AGENTD_CI_IMAGES=/tmp/images.tar scripts/ci-docker.sh \
#     && AGENTD_CI_IMAGES=/tmp/images.tar scripts/ci-k8s.sh
#
# AGENTD_CI_IMAGES: `docker save` of agentd:ci, agentd-fakellm:ci and
# local/pause:ci (scripts/ci-docker.sh writes it); without it step 5 is skipped.
# A missing tool is a loud "SKIPPED: ..." (see scripts/ci/lib.sh), not a pass.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/ci/lib.sh

unavailable_reason() { cat "$CI_CACHE/unavailable/$1" 2>/dev/null || echo "not built: run scripts/ci-tools.sh"; }

if [ -x "$K8S_DIR/kubectl" ]; then
	kubectl=$K8S_DIR/kubectl
else
	skip "k8s: kustomize, kubeconform, dry-run=server, cluster rollout" "kubectl $K8S_VERSION: $(unavailable_reason kubernetes)"
	exit 0
fi
W=$(mktemp -d "${TMPDIR:-/tmp}/agentd-ci-k8s.XXXXXX")
kc() { "$kubectl" "$@"; }

# --- teardown -------------------------------------------------------------------------
PIDS=()      # background processes, stopped in reverse order
hang_pids=() # clients of the turns in flight
writes_pid=  # the writer of the leader-loss check
ctrd_sock=$W/containerd.sock
cni_bridge=agentdci0
netns_before=$(ls /var/run/netns 2>/dev/null | tr '\n' ' ' || true)
had_kube_chains=$(iptables-save 2>/dev/null | grep -m1 '^:KUBE-' || true)
cleanup() {
	local rc=$?
	set +e
	phase_end
	if [ "$rc" != 0 ] && [ -n "${KUBECONFIG:-}" ]; then
		echo "--- cluster state (the check failed)"
		kc get pods,pvc,pv -o wide 2>&1 | head -30
		kc get events --sort-by=.lastTimestamp 2>&1 | tail -25
		for i in 0 1 2; do kc logs "agentd-$i" -c agentd --tail 15 2>/dev/null | sed "s/^/agentd-$i: /"; done
		tail -5 "$W"/kubelet.log 2>/dev/null
	fi
	for p in "${hang_pids[@]}" $writes_pid; do kill "$p" 2>/dev/null; done
	if [ -n "${KUBECONFIG:-}" ] && [ -S "$ctrd_sock" ]; then
		kc delete statefulset agentd --cascade=foreground --wait=true --timeout=60s >/dev/null 2>&1
	fi
	local i
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		p=${PIDS[i]}
		if [ "$p" = ctr ]; then # containers outlive containerd: kill them first
			for c in $(ctr -a "$ctrd_sock" -n k8s.io c ls -q 2>/dev/null); do
				ctr -a "$ctrd_sock" -n k8s.io t kill -s KILL "$c" >/dev/null 2>&1
				ctr -a "$ctrd_sock" -n k8s.io t rm -f "$c" >/dev/null 2>&1
				ctr -a "$ctrd_sock" -n k8s.io c rm "$c" >/dev/null 2>&1
			done
			continue
		fi
		kill "$p" 2>/dev/null
		for _ in $(seq 1 20); do kill -0 "$p" 2>/dev/null || break; sleep 0.25; done
		kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	grep " $W/" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
	for n in $(ls /var/run/netns 2>/dev/null | grep '^cni-'); do # the pods' network namespaces
		[[ " $netns_before " == *" $n "* ]] || ip netns delete "$n" 2>/dev/null
	done
	ip link del "$cni_bridge" 2>/dev/null # and the route of the Service addresses with it
	[ -n "$had_kube_chains" ] || drop_chains KUBE- # the kubelet's and kube-proxy's, unless they were there before
	rm -rf "$W"
	log "k8s: torn down ($W removed)"
	exit "$rc"
}
trap cleanup EXIT

# --- 1. render ---------------------------------------------------------------------------
phase "k8s: kustomize (base and CI overlay)"
render() { kc kustomize --load-restrictor LoadRestrictionsNone "$1"; }
render deploy/k8s/base >"$W/base.yaml"
render deploy/k8s/overlays/ci >"$W/ci.yaml"
grep '^kind:' "$W/base.yaml" | sort | uniq -c | sed 's/^/base: /'

# --- 2. config tree == ConfigMap ---------------------------------------------------------
phase "k8s: the ConfigMap holds the whole config tree"
roots=()
for r in AGENTAO.md skills .agentao instructions; do [ -e "$r" ] && roots+=("$r"); done
find "${roots[@]}" -type f | sort >"$W/tree.txt"
# the config volume's items: "path: <relative path>" (probe paths start with /)
grep -E '^ +path: [^/]' "$W/base.yaml" | awk '{print $2}' | sort >"$W/items.txt"
if ! diff -u "$W/tree.txt" "$W/items.txt"; then
	echo "deploy/k8s/base: the config tree (-) and the ConfigMap items (+) differ. For each new file F add" >&2
	echo "  '- KEY=../../../F' to configMapGenerator in kustomization.yaml and '- {key: KEY, path: F}' to the" >&2
	echo "  config volume's items in statefulset.yaml (KEY: F with / replaced by __, without a leading dot)." >&2
	die "config tree and ConfigMap differ"
fi
echo "$(wc -l <"$W/tree.txt") files, each in the ConfigMap and mounted at its path under /etc/agentd"

# --- 3. kubeconform ------------------------------------------------------------------------
phase "k8s: kubeconform -strict (local schemas of Kubernetes $K8S_VERSION)"
if [ ! -x "$KUBECONFORM_DIR/kubeconform" ]; then
	skip "kubeconform" "kubeconform $KUBECONFORM_VERSION: $(unavailable_reason kubeconform)"
elif [ ! -f "$SCHEMA_DIR/statefulset-apps-v1.json" ]; then
	skip "kubeconform" "JSON schemas: $(unavailable_reason schemas)"
else
	# Never the default schema location (a URL): local files only.
	conform() { "$KUBECONFORM_DIR/kubeconform" -strict -summary -schema-location "$SCHEMA_DIR/{{ .ResourceKind }}{{ .KindSuffix }}.json" "$@"; }
	conform "$W/base.yaml"
	conform "$W/ci.yaml"
	sed 's/^\( *\)readOnlyRootFilesystem: true/\1readOnlyRootFilesystem: true\n\1bogusField: 1/' "$W/base.yaml" >"$W/bad.yaml"
	if conform "$W/bad.yaml" >"$W/bad.out" 2>&1; then die "kubeconform accepted an unknown field"; fi
	grep -q "bogusField" "$W/bad.out" || die "kubeconform failed on the bad manifest, but not for the unknown field: $(cat "$W/bad.out")"
	echo "an unknown field is rejected: $(grep -o "additional properties 'bogusField' not allowed" "$W/bad.out" | head -1)"
fi

# --- 4. a real kube-apiserver: dry-run=server -------------------------------------------------
phase "k8s: kubectl apply --dry-run=server (etcd + kube-apiserver $K8S_VERSION)"
if ! command -v etcd >/dev/null; then
	skip "k8s: dry-run=server and cluster rollout" "etcd is not installed ($(unavailable_reason etcd))"
	exit 0
fi
if [ ! -x "$K8S_DIR/kube-apiserver" ]; then
	skip "k8s: dry-run=server and cluster rollout" "kube-apiserver $K8S_VERSION: $(unavailable_reason kubernetes)"
	exit 0
fi
mkdir -p "$W/pki" "$W/etcd" "$W/kcerts"
openssl genrsa -out "$W/pki/sa.key" 2048 2>/dev/null
openssl rsa -in "$W/pki/sa.key" -pubout -out "$W/pki/sa.pub" 2>/dev/null
token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$token,ci-admin,ci-admin-uid,system:masters" >"$W/pki/tokens.csv"
etcd --data-dir "$W/etcd" --listen-client-urls http://127.0.0.1:22379 --advertise-client-urls http://127.0.0.1:22379 \
	--listen-peer-urls http://127.0.0.1:22380 --initial-advertise-peer-urls http://127.0.0.1:22380 \
	--initial-cluster default=http://127.0.0.1:22380 >"$W/etcd.log" 2>&1 &
PIDS+=($!)
"$K8S_DIR/kube-apiserver" --etcd-servers=http://127.0.0.1:22379 --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
	--endpoint-reconciler-type=none --secure-port=26443 --cert-dir="$W/kcerts" \
	--service-account-issuer=https://kubernetes.default.svc --service-account-key-file="$W/pki/sa.pub" \
	--service-account-signing-key-file="$W/pki/sa.key" --service-cluster-ip-range=10.96.0.0/16 \
	--authorization-mode=RBAC,Node --token-auth-file="$W/pki/tokens.csv" \
	--kubelet-preferred-address-types=Hostname >"$W/kube-apiserver.log" 2>&1 &
PIDS+=($!)
cat >"$W/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters: [{name: ci, cluster: {server: "https://127.0.0.1:26443", insecure-skip-tls-verify: true}}]
users: [{name: ci-admin, user: {token: "$token"}}]
contexts: [{name: ci, context: {cluster: ci, user: ci-admin, namespace: default}}]
current-context: ci
KC
export KUBECONFIG=$W/kubeconfig
apiserver_ready() { [ "$(curl -sk -H "Authorization: Bearer $token" https://127.0.0.1:26443/readyz)" = ok ]; }
wait_for 90 kube-apiserver apiserver_ready || { tail -20 "$W/kube-apiserver.log"; die "kube-apiserver did not become ready"; }
kc version 2>/dev/null | sed 's/^/  /'
kc apply --dry-run=server -f "$W/base.yaml"
kc apply --dry-run=server -f "$W/ci.yaml" >/dev/null
echo "(the CI overlay too)"
sed 's/podManagementPolicy: OrderedReady/podManagementPolicy: Sometimes/' "$W/base.yaml" >"$W/bad.yaml"
if kc apply --dry-run=server -f "$W/bad.yaml" >"$W/bad.out" 2>&1; then die "the apiserver accepted podManagementPolicy: Sometimes"; fi
echo "an invalid value is rejected: $(grep -o 'spec.podManagementPolicy: Invalid value: "Sometimes".*' "$W/bad.out" | head -1)"
grep -q 'spec.podManagementPolicy: Invalid value: "Sometimes"' "$W/bad.out" || die "dry-run failed on the bad manifest, but not for the bad value: $(cat "$W/bad.out")"

# --- 5. a one-node cluster -----------------------------------------------------------------------
phase "k8s: one-node cluster (controller-manager, scheduler, CoreDNS, containerd, kubelet, kube-proxy)"
reason=
for b in kube-controller-manager kube-scheduler kubelet kube-proxy; do
	[ -x "$K8S_DIR/$b" ] || reason="$b $K8S_VERSION: $(unavailable_reason kubernetes)"
done
[ -x "$COREDNS_DIR/coredns" ] || reason="CoreDNS $COREDNS_VERSION: $(unavailable_reason coredns)"
command -v containerd >/dev/null && command -v runc >/dev/null && command -v ctr >/dev/null ||
	reason="containerd/runc are not installed ($(unavailable_reason docker))"
command -v iptables >/dev/null || reason="iptables is not installed (kube-proxy needs it; $(unavailable_reason docker))"
[ -x /usr/lib/cni/bridge ] || reason="CNI plugins are not installed ($(unavailable_reason etcd))"
[ -s "${AGENTD_CI_IMAGES:-}" ] || reason="no images to run (AGENTD_CI_IMAGES unset or empty: scripts/ci-docker.sh makes them)"
if [ -n "$reason" ]; then
	skip "k8s: cluster (3-replica fleet: DNS, Service, halt, forwarding, leader loss, rolling update)" "$reason"
	exit 0
fi
mkdir -p "$W/ctrd" "$W/cni/net.d" "$W/kubelet"
"$K8S_DIR/kube-controller-manager" --kubeconfig="$KUBECONFIG" --bind-address=127.0.0.1 --secure-port=20257 \
	--service-account-private-key-file="$W/pki/sa.key" --root-ca-file="$W/kcerts/apiserver.crt" --leader-elect=false \
	--controllers='*,-nodeipam' >"$W/kube-controller-manager.log" 2>&1 &
PIDS+=($!)
"$K8S_DIR/kube-scheduler" --kubeconfig="$KUBECONFIG" --bind-address=127.0.0.1 --secure-port=20259 \
	--leader-elect=false >"$W/kube-scheduler.log" 2>&1 &
PIDS+=($!)

# The pods' network: a bridge with the gateway 10.244.0.1 on this machine.
# It is made here, not by the CNI bridge plugin at the first pod, so that the
# cluster DNS can listen on the gateway before any pod exists (the plugin
# takes a bridge that already has its gateway address). Service addresses
# (10.96.0.0/16) are routed to the bridge too: kube-proxy rewrites them to pod
# addresses, and without a rule a packet stays on this machine rather than
# taking the default route.
pod_gw=10.244.0.1
ip link del "$cni_bridge" 2>/dev/null || true # left by a run that was killed
ip link add "$cni_bridge" type bridge
ip addr add "$pod_gw/24" dev "$cni_bridge"
ip link set "$cni_bridge" up
ip route add 10.96.0.0/16 dev "$cni_bridge"

# Cluster DNS: CoreDNS (built by scripts/ci-tools.sh with the kubernetes
# plugin) on the bridge's gateway, answering cluster.local from the
# apiserver: Services, the headless Service's pods (every pod, Ready or not:
# publishNotReadyAddresses) and each pod's own name, agentd-N.agentd-headless.
# The kubelet gives pods this server and the search path
# default.svc.cluster.local, so AGENTD_PEERS=dns+http://agentd-headless:8080
# works as in a real cluster. No cache: a pod that appears is in the next answer.
cat >"$W/Corefile" <<CF
cluster.local:53 {
	bind $pod_gw
	errors
	log . {
		class denial error
	}
	ready 127.0.0.1:28181
	kubernetes cluster.local {
		kubeconfig $KUBECONFIG ci
	}
}
CF
"$COREDNS_DIR/coredns" -conf "$W/Corefile" >"$W/coredns.log" 2>&1 &
PIDS+=($!)
wait_for 60 "CoreDNS ready" curl -fsS http://127.0.0.1:28181/ready || { tail -20 "$W/coredns.log"; die "CoreDNS did not become ready"; }
log "CoreDNS $COREDNS_VERSION on $pod_gw:53 (zone cluster.local)"

# containerd: this node lacks CAP_SYS_RESOURCE, hence restrict_oom_score_adj.
cat >"$W/ctrd/config.toml" <<CT
version = 2
root = "$W/ctrd/root"
state = "$W/ctrd/state"
[grpc]
  address = "$ctrd_sock"
[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "local/pause:ci"
    restrict_oom_score_adj = true
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "$W/cni/net.d"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
CT
cat >"$W/cni/net.d/10-agentdci.conflist" <<CN
{"cniVersion": "0.4.0", "name": "agentdci", "plugins": [
  {"type": "bridge", "bridge": "$cni_bridge", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/24", "gateway": "$pod_gw"}]], "dataDir": "$W/cni/ipam"}},
  {"type": "portmap", "capabilities": {"portMappings": true}}, {"type": "loopback"}]}
CN
containerd --config "$W/ctrd/config.toml" >"$W/containerd.log" 2>&1 &
PIDS+=($!)
PIDS+=(ctr)
wait_for 20 containerd ctr -a "$ctrd_sock" version
ctr -a "$ctrd_sock" -n k8s.io images import "$AGENTD_CI_IMAGES" >/dev/null
ctr -a "$ctrd_sock" -n k8s.io images ls -q | grep -E 'agentd|pause' | sed 's/^/  image /'
cat >"$W/kubelet.yaml" <<KL
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: 20250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 20248
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$ctrd_sock
enforceNodeAllocatable: []
evictionHard: {}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
clusterDNS: [$pod_gw]
clusterDomain: cluster.local
KL
"$K8S_DIR/kubelet" --kubeconfig="$KUBECONFIG" --config="$W/kubelet.yaml" --root-dir="$W/kubelet" \
	--cert-dir="$W/kcerts" --hostname-override=127.0.0.1 >"$W/kubelet.log" 2>&1 &
PIDS+=($!)
# kube-proxy, iptables mode: ClusterIP Services work from this machine (the
# checks' client) and from the pods. It leaves the machine's sysctls alone
# (conntrack limits and timeouts as they are, no route_localnet); its
# KUBE-* chains go at the teardown.
cat >"$W/kube-proxy.yaml" <<KP
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: "$KUBECONFIG"}
hostnameOverride: 127.0.0.1
mode: iptables
clusterCIDR: 10.244.0.0/24
healthzBindAddress: 127.0.0.1:20256
metricsBindAddress: 127.0.0.1:20249
iptables: {localhostNodePorts: false}
conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s, udpTimeout: 0s, udpStreamTimeout: 0s}
KP
"$K8S_DIR/kube-proxy" --config="$W/kube-proxy.yaml" >"$W/kube-proxy.log" 2>&1 &
PIDS+=($!)
node_ready() { kc wait --for=condition=Ready node/127.0.0.1 --timeout=5s; }
wait_for 120 "node Ready" node_ready || { tail -20 "$W/kubelet.log"; die "the node did not become Ready"; }
wait_for 60 "the default ServiceAccount" kc get serviceaccount default
wait_for 60 "kube-proxy healthy" curl -fsS http://127.0.0.1:20256/healthz || { tail -20 "$W/kube-proxy.log"; die "kube-proxy did not become healthy"; }
log "node Ready, kube-proxy (iptables) healthy"

phase "k8s: apply the CI overlay, 3 replicas Ready"
# No provisioner: one hostPath volume per replica, owned by 10001 (hostPath
# ignores fsGroup).
for i in 0 1 2; do
	mkdir -p "$W/pv$i"
	chown 10001:10001 "$W/pv$i"
	cat <<PV
apiVersion: v1
kind: PersistentVolume
metadata: {name: agentd-ci-pv-$i}
spec:
  capacity: {storage: 10Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  hostPath: {path: "$W/pv$i", type: Directory}
---
PV
done | kc apply -f - >/dev/null
kc apply -f "$W/ci.yaml"
kc rollout status statefulset/agentd --timeout=240s
kc get pods,pvc -o wide
ready=$(kc get statefulset agentd -o jsonpath='{.status.readyReplicas}')
[ "$ready" = 3 ] || die "$ready replicas Ready, want 3"

phase "k8s: the pods as deployed (uid, read-only root, capabilities, config, volume)"
kc exec agentd-0 -c agentd -- sh -c '
	set -e
	echo "uid=$(id -u) gid=$(id -g) groups=$(id -G)"
	[ "$(id -u)" = 10001 ]
	if touch /probe 2>/dev/null; then echo "root filesystem is writable"; exit 1; fi
	grep -q "^CapEff:.*0000000000000000" /proc/self/status
	grep -q "^NoNewPrivs:.*1" /proc/self/status
	grep -q "^Seccomp:.*2" /proc/self/status
	ls /etc/agentd/skills/default/code-review/SKILL.md /etc/agentd/.agentao/sandbox.json >/dev/null
	if touch /etc/agentd/probe 2>/dev/null; then echo "config is writable"; exit 1; fi
	touch /data/probe /tmp/probe && rm /data/probe /tmp/probe
	echo "uid 10001, read-only root and config, no capabilities, no_new_privs, seccomp filter, /data and /tmp writable: ok"
'
for f in $(cat "$W/tree.txt"); do
	kc exec agentd-0 -c agentd -- cat "/etc/agentd/$f" | cmp -s - "$f" || die "/etc/agentd/$f in the pod differs from $f"
done
echo "the config tree in the pod matches the repository's"

# --- the fleet's network: DNS names and the Service ----------------------------------------
key=ci-k8s-key-0123456789abcdef     # deploy/k8s/overlays/ci: a user key (tenant ci)
admin=ci-k8s-admin-0123456789abcdef # and an admin key (tenant ops)
check=$W/agentdcheck
go build -o "$check" ./scripts/ci/agentdcheck
pod_ip() { kc get pod "agentd-$1" -o jsonpath='{.status.podIP}'; }
pod_url() { echo "http://$(pod_ip "$1"):8080"; }
pod_urls() { echo "agentd-0=$(pod_url 0),agentd-1=$(pod_url 1),agentd-2=$(pod_url 2)"; }

phase "k8s: cluster DNS in the pods (agentd-headless, agentd-N.agentd-headless) and the agentd Service"
kc exec agentd-0 -c agentd -- cat /etc/resolv.conf | sed 's/^/agentd-0 resolv.conf: /'
ips=" $(pod_ip 0) $(pod_ip 1) $(pod_ip 2) "
# In a pod: each pod's own name gives its address, agentd-headless every
# pod's (busybox nslookup asks for the name as given: the full names). Then
# the short names AGENTD_PEERS and the fleet use, completed by the search path
# of the pod's resolv.conf, through agentd's own (Go) resolver, the one the
# fleet uses: `agentd canary status` asks every address of a name
# (dns+http://) or each name given. (busybox wget would use the libc
# resolver, but Debian's static busybox, which the CI image has, crashes in
# a DNS lookup.)
lookup() { # lookup NAME: the addresses busybox nslookup gives for NAME in agentd-0
	kc exec agentd-0 -c agentd -- nslookup "$1" >"$W/nslookup.out" 2>&1 || true
	awk '/^Name:/ {n=1} n && /^Address/ {print $NF}' "$W/nslookup.out" | sort | tr '\n' ' ' | sed 's/ $//'
}
ns=default.svc.cluster.local
for i in 0 1 2; do
	got=$(lookup "agentd-$i.agentd-headless.$ns")
	[ "$got" = "$(pod_ip "$i")" ] || { cat "$W/nslookup.out"; tail -5 "$W/coredns.log"; die "agentd-$i.agentd-headless.$ns resolves to '$got' in agentd-0, want $(pod_ip "$i")"; }
	echo "agentd-$i.agentd-headless.$ns -> $got"
done
got=$(lookup "agentd-headless.$ns")
for ip in $ips; do [[ " $got " == *" $ip "* ]] || { cat "$W/nslookup.out"; die "agentd-headless.$ns resolves to '$got' in agentd-0, without $ip"; }; done
echo "agentd-headless.$ns -> $got"
in_pod_status() { # in_pod_status SERVERS: agentd canary status --server SERVERS, run in agentd-0
	kc exec -i agentd-0 -c agentd -- sh -c 'read -r AGENTD_ADMIN_KEY; export AGENTD_ADMIN_KEY
		exec agentd canary status --server "$0"' "$1" <<<"$admin" >"$W/status.out" 2>&1
}
in_pod_status dns+http://agentd-headless:8080 || { cat "$W/status.out"; die "agentd in agentd-0 cannot reach dns+http://agentd-headless:8080"; }
got=$(sed -n 's,^== http://\(.*\):8080$,\1,p' "$W/status.out" | sort | tr '\n' ' ' | sed 's/ $//')
[ "$got" = "$(echo $ips | tr ' ' '\n' | sort | tr '\n' ' ' | sed 's/ $//')" ] || { cat "$W/status.out"; die "dns+http://agentd-headless:8080 in agentd-0 is '$got', want every pod:$ips"; }
echo "agentd in agentd-0: dns+http://agentd-headless:8080 is $got, each answered"
in_pod_status http://agentd-0.agentd-headless:8080,http://agentd-1.agentd-headless:8080,http://agentd-2.agentd-headless:8080 ||
	{ cat "$W/status.out"; die "agentd in agentd-0 cannot reach http://agentd-N.agentd-headless:8080"; }
echo "agentd in agentd-0: http://agentd-{0,1,2}.agentd-headless:8080 each answered"
svc_ip=$(kc get service agentd -o jsonpath='{.spec.clusterIP}')
svc=http://$svc_ip:80
wait_for 30 "the agentd Service ($svc) from this machine" curl -fsS "$svc/readyz" ||
	{ tail -20 "$W/kube-proxy.log"; die "the agentd Service's ClusterIP does not answer (kube-proxy)"; }
n=$(iptables-save -t nat | grep -c -- '--comment "default/agentd:http -> .* -j KUBE-SEP-' || true)
echo "the agentd Service answers on its ClusterIP $svc: kube-proxy (iptables mode) spreads it over $n pods"
[ "$n" = 3 ] || { iptables-save -t nat | grep 'default/agentd:http'; die "kube-proxy sends the agentd Service to $n pods, want 3"; }

# --- the fleet ----------------------------------------------------------------------------------
phase "k8s: the fleet formed (3 members, one leader)"
leader=$("$check" fleet -urls "$(pod_urls)" -key "$admin" -members 3 -timeout 120s) || die "the 3 pods did not form one fleet"
echo "leader: $leader"

phase "k8s: a session created through the Service is served through every pod"
everywhere_sid=$("$check" everywhere -url "$svc" -urls "$(pod_urls)" -key "$key" -user svc-user) ||
	die "a session created through the Service is not served through every pod"

phase "k8s: a halt through the Service reaches every pod within 2 s"
cat >"$W/canary.json" <<'CJ'
{"models": ["fake-model", "fake-model-b"],
 "model": {"stable": "fake-model", "variants": [{"name": "ci-beta", "value": "fake-model-b", "percent": 50}]}}
CJ
"$check" apply -url "$svc" -key "$admin" -file "$W/canary.json" -reason "ci: a variant to halt" ||
	die "PUT /v1/admin/canary through the Service"
"$check" halt -url "$svc" -urls "$(pod_urls)" -key "$admin" -dimension model -variant ci-beta -within 2s ||
	die "the halt did not reach every pod within 2 s"

# lose_leader HOW AFTER: lose the leader (HOW: deleted, the pod deleted as a
# drain or an eviction does: preStop, then SIGTERM; or killed, its agentd
# process SIGKILLed, as a crash does, and restarted by the kubelet) while
# `agentdcheck writes` puts a configuration through the Service every 200 ms,
# for AFTER past the loss; then wait for the pod to be back in the fleet.
back() { # back POD UID RESTARTS: POD is Ready as a new pod (not UID) or after a restart of agentd
	local got
	got=$(kc get pod "$1" -o jsonpath='{.metadata.uid} {.status.containerStatuses[?(@.name=="agentd")].restartCount}') &&
		[ "$got" != "$2 $3" ] && kc wait --for=condition=Ready "pod/$1" --timeout=2s
}
lose_leader() {
	local how=$1 after=$2 leader old writes_rc=0 cid
	leader=$("$check" fleet -urls "$(pod_urls)" -key "$admin" -members 3 -timeout 60s) ||
		die "no fleet before deleting the leader"
	rm -f "$W/deleted"
	"$check" writes -url "$svc" -urls "$(pod_urls)" -key "$admin" -file "$W/canary.json" -marker "$W/deleted" \
		-after "$after" -within 10s -old-leader "$leader" >"$W/writes.out" 2>&1 &
	writes_pid=$!
	sleep 2 # a few writes before
	old=$(kc get pod "$leader" -o jsonpath='{.metadata.uid} {.status.containerStatuses[?(@.name=="agentd")].restartCount}')
	if [ "$how" = killed ]; then
		cid=$(kc get pod "$leader" -o jsonpath='{.status.containerStatuses[?(@.name=="agentd")].containerID}')
		echo "killing the leader, agentd in $leader (SIGKILL)"
		ctr -a "$ctrd_sock" -n k8s.io tasks kill -s SIGKILL "${cid#containerd://}"
	else
		echo "deleting the leader, $leader (preStop 5 s, then SIGTERM)"
		kc delete pod "$leader" --wait=false
	fi
	touch "$W/deleted"
	wait "$writes_pid" || writes_rc=$?
	writes_pid=
	cat "$W/writes.out"
	[ "$writes_rc" = 0 ] || die "writes through the Service did not resume within 10 s of losing the leader ($how)"
	# shellcheck disable=SC2086 # old is "UID RESTARTS"
	wait_for 120 "$leader to be back and Ready" back "$leader" $old || die "$leader did not come back"
	"$check" fleet -urls "$(pod_urls)" -key "$admin" -members 3 -timeout 120s >/dev/null ||
		die "$leader did not rejoin the fleet"
	echo "$leader is back in the fleet"
}
phase "k8s: the leader pod deleted: writes through the Service resume within 10 s"
lose_leader deleted 20s
phase "k8s: the leader's agentd killed (SIGKILL): writes through the Service resume within 10 s"
lose_leader killed 15s

# --- sessions across a rolling update ------------------------------------------------------
phase "k8s: a session on each pod, a [[hang]] turn in flight on each"
sids=()
for i in 0 1 2; do
	sids[i]=$("$check" open -url "$(pod_url "$i")" -key "$key" -user "user-$i")
	echo "agentd-$i: session ${sids[i]}"
done
"$check" shell -url "$(pod_url 0)" -key "$key" -user shell-user ||
	die "run_shell_command does not work in the pod (seccomp RuntimeDefault, read-only root, no capabilities)"
for i in 0 1 2; do
	"$check" hang -url "$(pod_url "$i")" -key "$key" -user "user-$i" -session "${sids[i]}" \
		-ready "$W/ready$i" -want-done >"$W/hang$i.out" 2>&1 &
	hang_pids[i]=$!
done
for i in 0 1 2; do
	wait_for 30 "the turn in flight on agentd-$i" test -f "$W/ready$i" || { cat "$W/hang$i.out"; die "no turn in flight on agentd-$i"; }
done
echo "3 turns in flight"

phase "k8s: kubectl rollout restart statefulset/agentd"
before=$(kc get statefulset agentd -o jsonpath='{.status.updateRevision}')
uids_before=$(kc get pods -l app.kubernetes.io/name=agentd -o jsonpath='{.items[*].metadata.uid}')
kc rollout restart statefulset/agentd
kc rollout status statefulset/agentd --timeout=300s
after=$(kc get statefulset agentd -o jsonpath='{.status.currentRevision} {.status.updateRevision} {.status.readyReplicas}')
read -r cur upd nready <<<"$after"
echo "revision $before -> $upd (current $cur, $nready Ready)"
[ "$cur" = "$upd" ] && [ "$upd" != "$before" ] && [ "$nready" = 3 ] || die "the rollout did not complete: $after"
for u in $(kc get pods -l app.kubernetes.io/name=agentd -o jsonpath='{.items[*].metadata.uid}'); do
	[[ " $uids_before " != *" $u "* ]] || die "pod $u was not replaced"
done
for i in 0 1 2; do
	wait "${hang_pids[i]}" || { cat "$W/hang$i.out"; die "agentd-$i: the in-flight turn's stream ended badly"; }
	sed "s/^/agentd-$i: /" "$W/hang$i.out"
done
hang_pids=()
kc get pods,pvc -o wide

phase "k8s: after the rollout, every session kept, and one version history"
"$check" fleet -urls "$(pod_urls)" -key "$admin" -members 3 -timeout 120s >/dev/null || die "no fleet after the rollout"
for i in 0 1 2; do
	# Through the Service: whichever pod takes it forwards to the owner.
	if ! "$check" verify -url "$svc" -key "$key" -user "user-$i" -session "${sids[i]}" -turns 2 >"$W/verify$i.out" 2>&1; then
		cat "$W/verify$i.out"
		die "agentd-$i: session ${sids[i]} did not survive the rollout"
	fi
	sed "s/^/agentd-$i: /" "$W/verify$i.out"
done
"$check" everywhere -url "$svc" -urls "$(pod_urls)" -key "$key" -user svc-user -session "$everywhere_sid" >/dev/null ||
	die "session $everywhere_sid is not served through every pod after the rollout"
echo "session $everywhere_sid (created through the Service before the leader loss) is served through every pod"
"$check" versions -urls "$(pod_urls)" -key "$admin" || die "the pods do not serve one version history"

phase "k8s: every pod down at once: the fleet comes back (OrderedReady, readiness without a quorum)"
# As after a power loss or a cluster restart: agentd-0 starts first and
# alone, without a quorum; it must become Ready for agentd-1 to start.
uids_before=$(kc get pods -l app.kubernetes.io/name=agentd -o jsonpath='{.items[*].metadata.uid}')
kc delete pods -l app.kubernetes.io/name=agentd --wait=true --timeout=120s
kc rollout status statefulset/agentd --timeout=240s
for u in $(kc get pods -l app.kubernetes.io/name=agentd -o jsonpath='{.items[*].metadata.uid}'); do
	[[ " $uids_before " != *" $u "* ]] || die "pod $u was not replaced"
done
"$check" fleet -urls "$(pod_urls)" -key "$admin" -members 3 -timeout 120s >/dev/null ||
	die "the fleet did not come back after every pod went down"
"$check" everywhere -url "$svc" -urls "$(pod_urls)" -key "$key" -user svc-user -session "$everywhere_sid" >/dev/null ||
	die "session $everywhere_sid is not served through every pod after every pod went down"
echo "session $everywhere_sid is served through every pod"
"$check" versions -urls "$(pod_urls)" -key "$admin" || die "the pods do not serve one version history"
"$check" apply -url "$svc" -key "$admin" -file "$W/canary.json" -reason "ci: a write after the fleet came back" ||
	die "PUT /v1/admin/canary through the Service after the fleet came back"
phase_end
echo "k8s checks passed"
