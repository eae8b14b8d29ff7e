// Package chaos is the crash campaign of agentd: TestCrashCampaign builds
// the real binary, runs it under load (JSON and SSE turns, turns with tool
// calls, ACP prompts over WebSocket, admin writes), kills it many times
// with SIGKILL or SIGTERM at a random moment, restarts it on the same data
// directory and checks after every restart that nothing acknowledged was
// lost, that every history is valid, that no turn ran twice, that no
// process outlived its agentd and that the configuration history is
// intact.
//
// The campaign is slow on purpose, so it runs only when asked:
//
//	AGENTD_CHAOS=1 go test -count=1 -timeout 30m -run TestCrashCampaign -v ./internal/chaos/
//
// or scripts/chaos, which .ci/run calls. AGENTD_CHAOS_RUNS sets the number
// of kills (default 200) and AGENTD_CHAOS_SEED the seed of every random
// choice (default: the clock; the summary prints it). The package has no
// code but its test: the campaign is a program, not a library.
// docs/reliability.md describes the invariants and the last full run.
package chaos
