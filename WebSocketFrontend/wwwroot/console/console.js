// The console page: a client panel speaking /ws through client.js, and an admin panel on /api.
import { GatewayClient } from "/console/client.js";

const $ = id => document.getElementById(id);
const wsUrl = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws`;
const client = new GatewayClient(wsUrl);
const LOG_LIMIT = 500;

function setState(element, text, kind) {
  element.textContent = text;
  element.classList.toggle("ok", kind === "ok");
  element.classList.toggle("error", kind === "error");
}

function parseJson(id) {
  try {
    return JSON.parse($(id).value);
  } catch (error) {
    throw new Error(`${id}: not JSON (${error.message})`);
  }
}

function appendBounded(list, item) {
  list.append(item);
  while (list.children.length > LOG_LIMIT) {
    list.firstElementChild.remove();
  }
  list.scrollTop = list.scrollHeight;
}

function showPush(response) {
  const item = document.createElement("li");
  item.dataset.seq = response.seq;
  item.textContent = `#${response.seq} from ${response.from ?? "back end"}: ${JSON.stringify(response.payload)}`;
  appendBounded($("pushes"), item);
}

// Wraps a button's action: errors show in the login state line instead of escaping.
function action(id, run, state = $("login-state")) {
  $(id).addEventListener("click", async () => {
    try {
      await run();
    } catch (error) {
      setState(state, error.code ? `${error.code}: ${error.message}` : error.message, "error");
    }
  });
}

// ---- client panel ----

client.addEventListener("frame", e => {
  const item = document.createElement("li");
  item.className = e.detail.direction;
  item.textContent = `${e.detail.direction === "in" ? "<" : ">"} ${e.detail.text}`;
  appendBounded($("log"), item);
});
client.addEventListener("open", () => setState($("connection"), "connected", "ok"));
client.addEventListener("close", e => setState($("connection"), `disconnected (${e.detail.code})`, "error"));
client.addEventListener("reconnecting", e => setState($("connection"), `reconnecting in ${e.detail.delay} ms (attempt ${e.detail.attempt})`));
client.addEventListener("relogin", e => {
  if (e.detail.error) {
    setState($("login-state"), `login after reconnect failed: ${e.detail.error.code}`, "error");
  } else {
    setState($("login-state"), `logged in again as ${e.detail.id}`, "ok");
    (e.detail.queue ?? []).forEach(showPush);
  }
});
client.addEventListener("response", e => showPush(e.detail));
client.addEventListener("loggedOut", e => setState($("login-state"), `logged out (${e.detail.reason})`, "error"));

async function ensureConnected() {
  if (!client.connected) {
    await client.connect();
  }
}

action("connect", ensureConnected);
action("disconnect", () => client.close());
action("register", async () => {
  await ensureConnected();
  const reply = await client.register(parseJson("register-info"));
  $("token").value = reply.token;
  $("client-id").value = reply.id;
  setState($("login-state"), `registered as ${reply.id}`, "ok");
});
action("copy-token", () => navigator.clipboard.writeText($("token").value));
action("login", async () => {
  await ensureConnected();
  const reply = await client.login($("token").value.trim(), { ack: $("ack").checked });
  $("client-id").value = reply.id;
  setState($("login-state"), `logged in as ${reply.id}`, "ok");
  (reply.queue ?? []).forEach(showPush);
});
action("logout", async () => {
  await client.logout();
  setState($("login-state"), "logged out");
});
action("update", async () => {
  await client.update($("token").value.trim(), parseJson("update-info"));
  setState($("login-state"), "information updated", "ok");
});
action("send", async () => {
  const reply = await client.send($("token").value.trim(), Number($("send-to").value), parseJson("send-payload"));
  setState($("login-state"), `sent #${reply.seq} (${reply.delivered})`, "ok");
});
action("clear-log", () => $("log").replaceChildren());

// ---- admin panel ----

let adminKey = null; // memory only: never written to storage, cookies or the address
let onlineAfter = 0;
let clientsAfter = 0;
let lastTotal = null;
let countersTimer = null;

async function api(method, path, body) {
  if (!adminKey) {
    throw new Error("Enter the admin key first.");
  }
  const response = await fetch(path, {
    method,
    headers: { Authorization: `Bearer ${adminKey}`, ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  const text = await response.text();
  const json = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const problem = json ?? {};
    const error = new Error(`${response.status} ${problem.code ?? ""}: ${problem.detail ?? problem.title ?? ""}`);
    error.status = response.status;
    throw error;
  }
  return json;
}

const adminAction = (id, run) => action(id, run, $("admin-status"));

async function refreshCounters() {
  const stats = await api("GET", "/api/stats");
  const now = performance.now();
  const total = stats.frontend.responsesPushed;
  $("c-connections").textContent = stats.frontend.connections;
  $("c-sessions").textContent = stats.frontend.sessions;
  $("c-cluster-sessions").textContent = stats.sessions;
  $("c-silos").textContent = stats.silos;
  $("c-frontends").textContent = stats.frontends;
  $("c-activations").textContent = stats.activations;
  if (lastTotal) {
    const rate = (total - lastTotal.total) / ((now - lastTotal.at) / 1000);
    $("c-rate").textContent = rate.toFixed(1);
  }
  lastTotal = { total, at: now };
}

async function loadOnline(reset) {
  if (reset) {
    onlineAfter = 0;
    $("online").replaceChildren();
  }
  const page = await api("GET", `/api/online?after=${onlineAfter}&limit=100`);
  for (const id of page.clients) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = id;
    button.dataset.id = id;
    button.addEventListener("click", () => showClient(id));
    item.append(button);
    $("online").append(item);
  }
  onlineAfter = page.next ?? onlineAfter;
  $("online-more").disabled = page.next === null;
}

async function loadClients(reset) {
  if (reset) {
    clientsAfter = 0;
    $("clients").tBodies[0].replaceChildren();
  }
  const page = await api("GET", `/api/clients?after=${clientsAfter}&limit=100`);
  for (const c of page.clients) {
    const row = $("clients").tBodies[0].insertRow();
    row.dataset.id = c.id;
    for (const value of [c.id, c.online ? "yes" : "no", c.queueLength, c.queueBytes]) {
      row.insertCell().textContent = value;
    }
    row.addEventListener("click", () => showClient(c.id).catch(e => setState($("admin-status"), e.message, "error")));
  }
  clientsAfter = page.next ?? clientsAfter;
  $("clients-more").disabled = page.next === null;
}

async function showClient(id) {
  $("admin-id").value = id;
  const details = await api("GET", `/api/clients/${id}`);
  $("details").textContent = JSON.stringify(details, null, 2);
}

function selectedId() {
  const id = Number($("admin-id").value);
  if (!Number.isInteger(id) || id < 1) {
    throw new Error("Choose a client id first.");
  }
  return id;
}

adminAction("admin-unlock", async () => {
  adminKey = $("admin-key").value;
  $("admin-key").value = "";
  await refreshCounters();
  setState($("admin-status"), "key accepted", "ok");
  await Promise.all([loadOnline(true), loadClients(true)]);
  clearInterval(countersTimer);
  countersTimer = setInterval(() => refreshCounters().catch(e => setState($("admin-status"), e.message, "error")), 2000);
});
adminAction("online-refresh", () => loadOnline(true));
adminAction("online-more", () => loadOnline(false));
adminAction("clients-refresh", () => loadClients(true));
adminAction("clients-more", () => loadClients(false));
adminAction("admin-show", () => showClient(selectedId()));
adminAction("admin-send", async () => {
  const id = selectedId();
  const reply = await api("POST", `/api/clients/${id}/responses`, parseJson("admin-payload"));
  setState($("admin-status"), `response #${reply.seq} to ${id}: ${reply.delivered}`, "ok");
});
adminAction("admin-kick", async () => {
  const id = selectedId();
  const reply = await api("DELETE", `/api/clients/${id}/session`);
  setState($("admin-status"), reply.ended ? `session of ${id} ended` : `${id} had no live session`, "ok");
});
adminAction("admin-delete", async () => {
  const id = selectedId();
  await api("DELETE", `/api/clients/${id}`);
  $("details").textContent = "";
  setState($("admin-status"), `client ${id} deleted`, "ok");
  await Promise.all([loadOnline(true), loadClients(true)]);
});
