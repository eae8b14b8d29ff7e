package sandbox

// probeSpec tells the probe what to try.
type probeSpec struct {
	Workspace string `json:"workspace"` // a write here succeeds iff the profile writes
	Outside   string `json:"outside"`   // holds probeExisting: reads, writes and truncation here must fail
	Connect   string `json:"connect"`   // ip:port of a TCP listener; fd 3 is an unconnected AF_INET stream socket
	Parent    int    `json:"parent"`    // a process outside the sandbox (the preflight's)
	Abstract  string `json:"abstract"`  // name of an abstract UNIX socket listening outside
	UnixPath  string `json:"unix_path"` // a pathname UNIX socket listening outside
}

// Probe check names, shared with Preflight's expectations.
const (
	checkWriteWorkspace   = "write in the workspace"
	checkWriteTmp         = "write in /tmp"
	checkReadTmp          = "list /tmp"
	checkWriteOutside     = "write outside the workspace"
	checkTruncateOutside  = "truncate a file outside the workspace"
	checkReadOutside      = "read a file outside the workspace"
	checkReadSystem       = "read /etc/passwd"
	checkReadProc         = "read /proc/<agentd>/cmdline"
	checkWriteDevNull     = "write /dev/null"
	checkSignalParent     = "signal agentd"
	checkSignalHelper     = "signal its own helper"
	checkAbstractUnix     = "connect to an abstract UNIX socket outside"
	checkPathUnix         = "connect to a UNIX socket file outside"
	checkSocketInet       = "socket(AF_INET, SOCK_STREAM)"
	checkSocketInet6Dgram = "socket(AF_INET6, SOCK_DGRAM)"
	checkSocketPacket     = "socket(AF_PACKET)"
	checkTCPConnect       = "TCP connect to a loopback listener (Landlock, on a socket made outside)"
	checkCapabilities     = "no capabilities"
	checkDaemon           = "start a setsid daemon" // "ok <pid>": Preflight checks it is gone with the command

	probeExisting = "existing" // a file in Outside the probe tries to read and truncate
	probeFD       = 3          // the inherited socket
)
