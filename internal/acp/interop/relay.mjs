// Interop test of the fleet relay: the official ACP TypeScript SDK
// (@agentclientprotocol/sdk) talks to replica b about a session replica a
// owns, over WebSocket, and must see no difference.
//
// Run by internal/acp's TestRelayInteropTypeScriptSDK, which sets:
//   AGENTD_WS_URL, AGENTD_WS_KEY   b's ws://…/v1/acp and an API key
//   AGENTD_SESSION                 a session a owns, with one turn of history
//   AGENTD_REPLAY                  how many updates a itself replays for it
//   AGENTD_DOWN_SESSION            a session of a member that is down
//   AGENTD_ORPHAN_SESSION          a session of a node that is no member
//
// Steps: session/load (the owner's history, before the response) → a prompt
// whose tool call asks for permission (answered allow_once through b) → a
// hanging prompt, cancelled with session/cancel → the errors of an
// unreachable owner (-32053 owner_unavailable) and of an unknown owner
// (-32002).
//
// Prints "ok: …" per step and exits 0, or prints "FAIL: …" and exits 1.

import * as acp from "@agentclientprotocol/sdk";
import { createWebSocketStream } from "@agentclientprotocol/sdk/experimental/ws-client";
import WebSocket from "ws";

const env = process.env;

const sdkComplaints = [];
const consoleError = console.error;
console.error = (...args) => {
  sdkComplaints.push(args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" "));
  consoleError(...args);
};

const timer = setTimeout(() => fail("timed out after 60s"), 60_000);

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

function texts(updates, sessionId, kind) {
  return updates
    .filter((n) => n.sessionId === sessionId && n.update.sessionUpdate === kind)
    .map((n) => n.update.content.text)
    .join("");
}

async function relay() {
  const sid = env.AGENTD_SESSION;
  const rec = { updates: [], permissions: [] };
  const app = acp
    .client({ name: "agentd-relay-interop" })
    .onNotification(acp.methods.client.session.update, ({ params }) => {
      rec.updates.push(params);
    })
    .onRequest(acp.methods.client.session.requestPermission, async ({ params }) => {
      rec.permissions.push(params);
      return { outcome: { outcome: "selected", optionId: "allow_once" } };
    });
  const headers = { Authorization: `Bearer ${env.AGENTD_WS_KEY}`, "X-Agentd-User": "carol" };
  const conn = app.connect(createWebSocketStream(env.AGENTD_WS_URL, { WebSocket, headers }));
  const init = await conn.agent.request(acp.methods.agent.initialize, {
    protocolVersion: acp.PROTOCOL_VERSION,
    clientCapabilities: {},
    clientInfo: { name: "agentd-relay-interop", version: "1.0.0" },
  });
  check(init.protocolVersion === 1 && init.agentCapabilities.loadSession === true, `initialize ${JSON.stringify(init)}`);

  const loaded = await conn.agent.request(acp.methods.agent.session.load, { sessionId: sid, cwd: process.cwd(), mcpServers: [] });
  check(loaded.configOptions?.[0]?.id === "model", `load configOptions ${JSON.stringify(loaded.configOptions)}`);
  const want = Number(env.AGENTD_REPLAY);
  check(want > 0 && rec.updates.length === want, `${rec.updates.length} updates replayed before the load response; want ${want}`);
  check(texts(rec.updates, sid, "user_message_chunk") === "first", `replayed user text ${texts(rec.updates, sid, "user_message_chunk")}`);
  ok(`relay session/load: the owner's ${want} updates before the response`);

  rec.updates.length = 0;
  const res = await conn.agent.request(acp.methods.agent.session.prompt, { sessionId: sid, prompt: [{ type: "text", text: "touch it" }] });
  check(res.stopReason === "end_turn", `stopReason ${res.stopReason}`);
  check(rec.permissions.length === 1 && rec.permissions[0].sessionId === sid, `${rec.permissions.length} permission requests`);
  const callId = rec.permissions[0].toolCall.toolCallId;
  const states = rec.updates.filter((n) => n.update.toolCallId === callId && n.update.status).map((n) => n.update.status);
  check(states[0] === "pending" && states.at(-1) === "completed", `tool call states ${states}`);
  check(texts(rec.updates, sid, "agent_message_chunk") === "done", `agent text ${texts(rec.updates, sid, "agent_message_chunk")}`);
  ok("relay prompt with a permission round trip (allow_once)");

  const hanging = conn.agent.request(acp.methods.agent.session.prompt, { sessionId: sid, prompt: [{ type: "text", text: "wait" }] });
  await sleep(500);
  await conn.agent.notify(acp.methods.agent.session.cancel, { sessionId: sid });
  const cancelled = await hanging;
  check(cancelled.stopReason === "cancelled", `stopReason after cancel ${cancelled.stopReason}`);
  ok("relay session/cancel of a hanging prompt → cancelled");

  try {
    await conn.agent.request(acp.methods.agent.session.load, { sessionId: env.AGENTD_DOWN_SESSION, cwd: process.cwd(), mcpServers: [] });
    fail("loading a session of a member that is down succeeded");
  } catch (e) {
    check(e.code === -32053 && e.data?.code === "owner_unavailable" && e.data?.node === "c", `owner down: ${e.code} ${JSON.stringify(e.data)}`);
  }
  try {
    await conn.agent.request(acp.methods.agent.session.prompt, { sessionId: env.AGENTD_ORPHAN_SESSION, prompt: [{ type: "text", text: "hi" }] });
    fail("a prompt to a session of no member succeeded");
  } catch (e) {
    check(e.code === -32002 && e.data?.sessionId === env.AGENTD_ORPHAN_SESSION, `no such owner: ${e.code} ${JSON.stringify(e.data)}`);
  }
  ok("relay errors: owner down → -32053 owner_unavailable, no such owner → -32002");
  conn.close();
}

try {
  await relay();
} catch (e) {
  fail(e?.stack ?? String(e));
}
check(sdkComplaints.length === 0, `the SDK complained: ${sdkComplaints.join("; ")}`);
clearTimeout(timer);
ok("relay interop passed");
