// Interop test: the official ACP TypeScript SDK (@agentclientprotocol/sdk)
// drives agentd as a real client would.
//
// Run by cmd/agentd's TestACPInteropTypeScriptSDK, which sets:
//   AGENTD_BIN         the agentd binary (started here as `agentd acp`)
//   AGENTD_DATA, AGENTD_CONFIG_DIR, OPENAI_BASE_URL, OPENAI_MODEL,
//   AGENTD_ACP_TENANT, AGENTD_ACP_USER ...   inherited by `agentd acp`
//   AGENTD_WS_URL, AGENTD_WS_KEY   a running `agentd serve`'s ws://…/v1/acp
//                                   and an API key (optional: skipped if unset)
//
// Stdio: initialize → session/new → a prompt whose tool call asks for
// permission (answered allow_once) → a hanging prompt, cancelled → disconnect
// (the process exits 0) → a new process: session/load (the replayed updates
// must reach the wire before the load response) → another prompt →
// session/list (newest first, titled) → session/close of a session whose
// prompt hangs (the prompt is answered cancelled before the close).
// WebSocket: the same client over the SDK's experimental WebSocket stream
// (Node 20 has no global WebSocket: the `ws` package provides it), then a
// third connection that re-attaches with session/resume (no replay).
//
// session/list, session/resume and session/close go through the SDK's
// generic request() with its method constants (acp.methods.agent.session.*),
// as every call here does: SDK 2.4.0 types their params and results.
//
// Prints "ok: …" per step and exits 0, or prints "FAIL: …" and exits 1.

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import * as acp from "@agentclientprotocol/sdk";
import { createWebSocketStream } from "@agentclientprotocol/sdk/experimental/ws-client";
import WebSocket from "ws";

const env = process.env;
const bin = env.AGENTD_BIN;
if (!bin) fail("AGENTD_BIN is not set");

// The SDK reports notifications it could not validate (and other protocol
// trouble) on console.error and drops them: count those as failures.
const sdkComplaints = [];
const consoleError = console.error;
console.error = (...args) => {
  sdkComplaints.push(args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" "));
  consoleError(...args);
};

const timer = setTimeout(() => fail("timed out after 120s"), 120_000);

function fail(msg) {
  process.stdout.write(`FAIL: ${msg}\n`);
  process.exit(1);
}

function ok(msg) {
  process.stdout.write(`ok: ${msg}\n`);
}

function check(cond, msg) {
  if (!cond) fail(msg);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A client app that records updates and answers permission requests.
function newClient() {
  const rec = { updates: [], permissions: [], answer: "allow_once" };
  const app = acp
    .client({ name: "agentd-interop" })
    .onNotification(acp.methods.client.session.update, ({ params }) => {
      rec.updates.push(params);
    })
    .onRequest(acp.methods.client.session.requestPermission, async ({ params }) => {
      rec.permissions.push(params);
      return { outcome: { outcome: "selected", optionId: rec.answer } };
    });
  return { app, rec };
}

// startAgent spawns `agentd acp` and taps its stdout: the raw lines are kept
// in wire order, because the SDK's callbacks do not keep it.
function startAgent() {
  const child = spawn(bin, ["acp"], { env, stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  const raw = [];
  const [forSDK, forTap] = Readable.toWeb(child.stdout).tee();
  (async () => {
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of forTap) {
      buf += dec.decode(chunk, { stream: true });
      for (let i; (i = buf.indexOf("\n")) >= 0; buf = buf.slice(i + 1)) {
        raw.push(buf.slice(0, i));
      }
    }
  })();
  const stream = acp.ndJsonStream(Writable.toWeb(child.stdin), forSDK);
  return { child, stream, raw, exited, stderr: () => stderr };
}

function parsed(raw, from = 0) {
  return raw.slice(from).map((l) => JSON.parse(l));
}

function texts(updates, sessionId, kind) {
  return updates
    .filter((n) => n.sessionId === sessionId && n.update.sessionUpdate === kind)
    .map((n) => n.update.content.text)
    .join("");
}

async function initialize(agent) {
  const init = await agent.request(acp.methods.agent.initialize, {
    protocolVersion: acp.PROTOCOL_VERSION,
    clientCapabilities: {},
    clientInfo: { name: "agentd-interop", version: "1.0.0" },
  });
  check(init.protocolVersion === 1, `protocolVersion ${init.protocolVersion}`);
  check(init.agentCapabilities.loadSession === true, "loadSession is not advertised");
  const sc = init.agentCapabilities.sessionCapabilities ?? {};
  check(sc.list && sc.resume && sc.close, `sessionCapabilities ${JSON.stringify(sc)}`);
  return init;
}

async function stdio() {
  // --- first process
  let a = startAgent();
  let { app, rec } = newClient();
  let conn = app.connect(a.stream);
  await initialize(conn.agent);
  ok("stdio initialize");

  const created = await conn.agent.request(acp.methods.agent.session.new, { cwd: process.cwd(), mcpServers: [] });
  const sid = created.sessionId;
  check(/^sess_[0-9a-f]{32}$/.test(sid), `sessionId ${sid}`);
  check(created.configOptions?.[0]?.id === "model", `configOptions ${JSON.stringify(created.configOptions)}`);
  ok(`stdio session/new ${sid}`);

  // A tool call the rules ask about: the client allows it once.
  const res = await conn.agent.request(acp.methods.agent.session.prompt, {
    sessionId: sid,
    prompt: [{ type: "text", text: 'make it [[tool run_shell_command {"command":"touch interop.txt"}]]' }],
  });
  check(res.stopReason === "end_turn", `stopReason ${res.stopReason}`);
  check(rec.permissions.length === 1, `${rec.permissions.length} permission requests`);
  const callId = rec.permissions[0].toolCall.toolCallId;
  check(rec.permissions[0].options.map((o) => o.optionId).join() === "allow_once,allow_always,reject_once,reject_always", "options");
  const wire = parsed(a.raw);
  const askAt = wire.findIndex((m) => m.method === "session/request_permission");
  const announcedAt = wire.findIndex((m) => m.method === "session/update" && m.params.update.sessionUpdate === "tool_call" && m.params.update.toolCallId === callId);
  check(announcedAt >= 0 && announcedAt < askAt, `tool_call at ${announcedAt}, permission request at ${askAt}`);
  check(/^srv_[0-9a-f]{16}$/.test(String(wire[askAt].id)), `permission request id ${wire[askAt].id}`);
  const states = rec.updates.filter((n) => n.update.toolCallId === callId && n.update.status).map((n) => n.update.status);
  check(states[0] === "pending" && states.at(-1) === "completed", `tool call states ${states}`);
  const call = rec.updates.find((n) => n.update.sessionUpdate === "tool_call" && n.update.toolCallId === callId).update;
  check(call.kind === "execute" && call.rawInput.command === "touch interop.txt", `tool_call ${JSON.stringify(call)}`);
  check(texts(rec.updates, sid, "agent_message_chunk").startsWith("tool said: "), "agent text");
  const made = join(env.AGENTD_DATA, "workspaces", env.AGENTD_ACP_TENANT, sid, "interop.txt");
  check(existsSync(made), `${made} was not created`);
  ok("stdio prompt with a permission round trip (allow_once), tool_call before the request");

  // A prompt that hangs, cancelled.
  const hanging = conn.agent.request(acp.methods.agent.session.prompt, {
    sessionId: sid,
    prompt: [{ type: "text", text: "wait [[hang]]" }],
  });
  await sleep(500);
  await conn.agent.notify(acp.methods.agent.session.cancel, { sessionId: sid });
  const cancelled = await hanging;
  check(cancelled.stopReason === "cancelled", `stopReason after cancel ${cancelled.stopReason}`);
  ok("stdio session/cancel of a hanging prompt → cancelled");

  // Disconnect: closing stdin ends the process cleanly.
  conn.close();
  a.child.stdin.end();
  const exit = await a.exited;
  check(exit.code === 0, `agentd acp exited ${JSON.stringify(exit)}:\n${a.stderr()}`);
  check(a.stderr().includes("every session saved"), "no clean-exit log line");
  ok("stdio disconnect: agentd acp exited 0");

  // --- a new process: load, then go on.
  a = startAgent();
  ({ app, rec } = newClient());
  conn = app.connect(a.stream);
  await initialize(conn.agent);
  const before = a.raw.length;
  const loaded = await conn.agent.request(acp.methods.agent.session.load, { sessionId: sid, cwd: process.cwd(), mcpServers: [] });
  check(loaded.configOptions?.[0]?.currentValue === env.OPENAI_MODEL, `load configOptions ${JSON.stringify(loaded.configOptions)}`);
  await sleep(100);
  const after = parsed(a.raw, before);
  const respAt = after.findIndex((m) => m.result?.configOptions);
  const replayed = after.slice(0, respAt).filter((m) => m.method === "session/update");
  check(respAt > 0 && replayed.length > 0, `load response at ${respAt} with ${replayed.length} updates before it`);
  check(after.slice(respAt + 1).every((m) => m.method !== "session/update"), "updates after the load response");
  check(rec.updates.length === replayed.length, `the SDK took ${rec.updates.length} of ${replayed.length} replayed updates`);
  const kinds = new Set(replayed.map((m) => m.params.update.sessionUpdate));
  for (const k of ["user_message_chunk", "agent_message_chunk", "tool_call", "tool_call_update"]) {
    check(kinds.has(k), `no ${k} in the replay (${[...kinds]})`);
  }
  const user = texts(rec.updates, sid, "user_message_chunk");
  check(user.includes("make it [[tool") && !user.includes("system-reminder"), `replayed user text ${user}`);
  const replayedCall = replayed.find((m) => m.params.update.toolCallId === callId && m.params.update.sessionUpdate === "tool_call");
  check(replayedCall?.params.update.status === "completed" && replayedCall.params.update.rawInput.command === "touch interop.txt", "replayed tool_call");
  ok(`stdio session/load after a restart: ${replayed.length} updates replayed before the response`);

  const again = await conn.agent.request(acp.methods.agent.session.prompt, { sessionId: sid, prompt: [{ type: "text", text: "hello again" }] });
  check(again.stopReason === "end_turn", `stopReason ${again.stopReason}`);
  check(texts(rec.updates, sid, "agent_message_chunk").endsWith("echo: hello again"), "reply after load");
  ok("stdio prompt after load");

  try {
    await conn.agent.request(acp.methods.agent.session.load, { sessionId: "sess_00000000000000000000000000000000", cwd: process.cwd(), mcpServers: [] });
    fail("loading an unknown session succeeded");
  } catch (e) {
    check(e.code === -32002 && e.data?.sessionId === "sess_00000000000000000000000000000000", `unknown session: ${e.code} ${JSON.stringify(e.data)}`);
  }
  ok("stdio unknown session → -32002");

  // session/list: the tenant's sessions, newest first.
  const { sessionId: newer } = await conn.agent.request(acp.methods.agent.session.new, { cwd: process.cwd(), mcpServers: [] });
  const listed = await conn.agent.request(acp.methods.agent.session.list, {});
  const ids = listed.sessions.map((s) => s.sessionId);
  check(ids.join() === [newer, sid].join(), `session/list ${ids}; want ${newer},${sid}`);
  const mine = listed.sessions[1];
  check(mine.title?.startsWith("make it [[tool"), `title ${mine.title}`);
  check(!Number.isNaN(Date.parse(mine.updatedAt)) && mine.cwd.startsWith("/"), `session info ${JSON.stringify(mine)}`);
  check(listed.nextCursor == null, `nextCursor ${listed.nextCursor}`);
  ok("stdio session/list: newest first, titled by the first user message");

  // session/close of a session whose prompt hangs: the prompt is answered
  // (cancelled) before the close is.
  const hanging2 = conn.agent.request(acp.methods.agent.session.prompt, { sessionId: sid, prompt: [{ type: "text", text: "wait again [[hang]]" }] });
  await sleep(500);
  const beforeClose = a.raw.length;
  const closed = await conn.agent.request(acp.methods.agent.session.close, { sessionId: sid });
  const stopped = await hanging2;
  check(stopped.stopReason === "cancelled" && Object.keys(closed).length === 0, `close ${JSON.stringify(closed)}, prompt ${stopped.stopReason}`);
  await sleep(100);
  const afterClose = parsed(a.raw, beforeClose);
  const promptAt = afterClose.findIndex((m) => m.result?.stopReason === "cancelled");
  const closeAt = afterClose.findIndex((m) => m.id !== undefined && !m.method && m.result && Object.keys(m.result).length === 0);
  check(promptAt >= 0 && promptAt < closeAt, `prompt answered at ${promptAt}, close at ${closeAt}`);
  await conn.agent.request(acp.methods.agent.session.close, { sessionId: "sess_00000000000000000000000000000000" });
  const goesOn = await conn.agent.request(acp.methods.agent.session.prompt, { sessionId: sid, prompt: [{ type: "text", text: "after close" }] });
  check(goesOn.stopReason === "end_turn", `prompt after close ${goesOn.stopReason}`);
  ok("stdio session/close: the hanging prompt answered cancelled first; an unknown session resolves; the session goes on");

  conn.close();
  a.child.stdin.end();
  const exit2 = await a.exited;
  check(exit2.code === 0, `second agentd acp exited ${JSON.stringify(exit2)}`);
}

async function websocket() {
  const url = env.AGENTD_WS_URL;
  if (!url) {
    ok("websocket: skipped (AGENTD_WS_URL not set)");
    return;
  }
  const headers = { Authorization: `Bearer ${env.AGENTD_WS_KEY}`, "X-Agentd-User": "carol" };
  let { app, rec } = newClient();
  let conn = app.connect(createWebSocketStream(url, { WebSocket, headers }));
  await initialize(conn.agent);
  const { sessionId } = await conn.agent.request(acp.methods.agent.session.new, { cwd: process.cwd(), mcpServers: [] });
  const res = await conn.agent.request(acp.methods.agent.session.prompt, { sessionId, prompt: [{ type: "text", text: "over the socket" }] });
  check(res.stopReason === "end_turn" && texts(rec.updates, sessionId, "agent_message_chunk") === "echo: over the socket", "websocket prompt");
  ok(`websocket initialize, session/new, prompt (${sessionId})`);
  conn.close();

  ({ app, rec } = newClient());
  conn = app.connect(createWebSocketStream(url, { WebSocket, headers }));
  await initialize(conn.agent);
  await conn.agent.request(acp.methods.agent.session.load, { sessionId, cwd: process.cwd(), mcpServers: [] });
  check(texts(rec.updates, sessionId, "user_message_chunk") === "over the socket", "websocket replay");
  const again = await conn.agent.request(acp.methods.agent.session.prompt, { sessionId, prompt: [{ type: "text", text: "and again" }] });
  check(again.stopReason === "end_turn" && texts(rec.updates, sessionId, "agent_message_chunk").endsWith("echo: and again"), "websocket prompt after load");
  ok("websocket reconnect: session/load replay, prompt");
  conn.close();

  // A third connection re-attaches without a replay.
  ({ app, rec } = newClient());
  conn = app.connect(createWebSocketStream(url, { WebSocket, headers }));
  await initialize(conn.agent);
  const resumed = await conn.agent.request(acp.methods.agent.session.resume, { sessionId, cwd: process.cwd() });
  check(resumed.configOptions?.[0]?.id === "model", `resume configOptions ${JSON.stringify(resumed.configOptions)}`);
  const third = await conn.agent.request(acp.methods.agent.session.prompt, { sessionId, prompt: [{ type: "text", text: "once more" }] });
  check(third.stopReason === "end_turn", `stopReason ${third.stopReason}`);
  check(rec.updates.every((n) => n.update.sessionUpdate !== "user_message_chunk"), "session/resume replayed the history");
  check(texts(rec.updates, sessionId, "agent_message_chunk") === "echo: once more", "websocket prompt after resume");
  ok("websocket session/resume: no replay, prompt");
  conn.close();
}

try {
  await stdio();
  await websocket();
} catch (e) {
  fail(e?.stack ?? String(e));
}
check(sdkComplaints.length === 0, `the SDK complained: ${sdkComplaints.join("; ")}`);
clearTimeout(timer);
ok("interop passed");
