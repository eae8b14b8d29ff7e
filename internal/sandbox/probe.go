package sandbox

// probeSpec tells the probe what to try.
type probeSpec struct {
	Workspace string `json:"workspace"` // a write here succeeds iff the profile writes
	Outside   string `json:"outside"`   // a write here must fail; it holds probeExisting
	Connect   string `json:"connect"`   // ip:port of a TCP listener; fd 3 is an unconnected AF_INET stream socket
}

// Probe check names, shared with Preflight's expectations.
const (
	checkWriteWorkspace   = "write in the workspace"
	checkWriteTmp         = "write in /tmp"
	checkWriteOutside     = "write outside the workspace"
	checkTruncateOutside  = "truncate a file outside the workspace"
	checkWriteDevNull     = "write /dev/null"
	checkSocketUnix       = "socket(AF_UNIX)"
	checkSocketInet       = "socket(AF_INET, SOCK_STREAM)"
	checkSocketInet6Dgram = "socket(AF_INET6, SOCK_DGRAM)"
	checkSocketPacket     = "socket(AF_PACKET)"
	checkTCPConnect       = "TCP connect to a loopback listener (Landlock, on a socket made outside)"
	checkCapabilities     = "no capabilities (CapPrm and CapEff empty)"

	probeExisting = "existing" // a file in Outside the probe tries to truncate
	probeFD       = 3          // the inherited socket
)
