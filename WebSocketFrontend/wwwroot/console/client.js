// The browser JavaScript client for the gateway's raw WebSocket protocol (/ws).
//
//   import { GatewayClient } from "/console/client.js";
//   const client = new GatewayClient("wss://gateway.example/ws");
//   client.addEventListener("response", e => console.log(e.detail));   // pushes: { seq, from, at, payload }
//   await client.connect();
//   const { id, token } = await client.register({ name: "probe-7" });
//   const { queue } = await client.login(token);                       // logs in again after every reconnect
//   await client.send(token, 42, { hello: "world" });
//
// Every request is a promise settled by the reply carrying its requestId; an `error` reply rejects it
// with a GatewayError whose `code` is the protocol's error code. Events: `open`, `close`, `frame`
// ({ direction: "in" | "out", text }), `response`, `loggedOut`, `reconnecting` ({ attempt, delay }),
// `relogin` (the reply of the login repeated after a reconnect).

/** An `error` reply: `code` is the protocol's error code (bad_request, invalid_token, ...). */
export class GatewayError extends Error {
  constructor(code, message, action) {
    super(message || code);
    this.name = "GatewayError";
    this.code = code;
    this.action = action;
  }
}

const REQUEST_EVENT = "client.to.instance";

export class GatewayClient extends EventTarget {
  #url;
  #socket = null;
  #nextId = 1;
  #pending = new Map();
  #login = null;
  #closedByUser = false;
  #everOpened = false;
  #attempt = 0;
  #timer = null;
  #options;

  /**
   * @param {string} url the gateway's /ws address (ws: or wss:)
   * @param {{ timeoutMs?: number, reconnect?: boolean, minDelayMs?: number, maxDelayMs?: number }} [options]
   *   timeoutMs: how long a request waits for its reply (default 20 s); reconnect (default true) with
   *   exponential backoff and jitter between minDelayMs (default 500) and maxDelayMs (default 15 s).
   */
  constructor(url, options = {}) {
    super();
    this.#url = url;
    this.#options = { timeoutMs: 20000, reconnect: true, minDelayMs: 500, maxDelayMs: 15000, ...options };
  }

  /** True while the socket is open. */
  get connected() {
    return this.#socket?.readyState === WebSocket.OPEN;
  }

  /** Opens the socket; resolves once it is open. */
  connect() {
    this.#closedByUser = false;
    return this.#open();
  }

  /** Closes the socket for good: no reconnect; pending requests reject. */
  close() {
    this.#closedByUser = true;
    clearTimeout(this.#timer);
    this.#socket?.close(1000, "closed by the client");
  }

  register(information) {
    return this.request("register", { information });
  }

  /** Logs in; the token (and ack) are kept so that a reconnect logs in again. */
  async login(token, { ack = false } = {}) {
    const parameters = ack ? { token, ack: true } : { token };
    const reply = await this.request("login", parameters);
    this.#login = parameters;
    return reply;
  }

  update(token, information) {
    return this.request("update", { token, information });
  }

  send(token, to, payload) {
    return this.request("send", { token, to, payload });
  }

  ack(upTo) {
    return this.request("ack", { upTo });
  }

  async logout() {
    const reply = await this.request("logout");
    this.#login = null;
    return reply;
  }

  async delete(token) {
    const reply = await this.request("delete", { token });
    this.#login = null;
    return reply;
  }

  rotate(token) {
    return this.request("rotate", { token });
  }

  ping() {
    return this.request("ping");
  }

  online(after, limit) {
    return this.request("online", { after, limit });
  }

  /** Sends any action; resolves with the reply's parameters, rejects with a GatewayError. */
  request(action, parameters) {
    if (!this.connected) {
      return Promise.reject(new GatewayError("not_connected", "The socket is not open.", action));
    }

    const requestId = this.#nextId++;
    const body = parameters === undefined ? { action, requestId } : { action, requestId, parameters };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(requestId);
        reject(new GatewayError("timeout", `No reply to ${action} within ${this.#options.timeoutMs} ms.`, action));
      }, this.#options.timeoutMs);
      this.#pending.set(requestId, { resolve, reject, timer, action });
      this.#write(JSON.stringify({ event: REQUEST_EVENT, body }));
    });
  }

  #write(text) {
    this.#socket.send(text);
    this.#emit("frame", { direction: "out", text });
  }

  #open() {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(this.#url);
      let opened = false;
      this.#socket = socket;
      socket.addEventListener("open", () => {
        opened = true;
        this.#everOpened = true;
        this.#attempt = 0;
        this.#emit("open", {});
        resolve();
      }, { once: true });
      socket.addEventListener("message", e => this.#receive(e.data));
      socket.addEventListener("close", e => {
        this.#failPending(new GatewayError("closed", `The socket closed (${e.code}).`));
        this.#emit("close", { code: e.code, reason: e.reason });
        if (!opened) {
          reject(new GatewayError("closed", `The socket did not open (${e.code}).`));
        }
        // Only a socket that worked once comes back by itself; a first connect that fails is the caller's to retry.
        if (!this.#closedByUser && this.#options.reconnect && this.#everOpened && this.#socket === socket) {
          this.#scheduleReconnect();
        }
      });
    });
  }

  #scheduleReconnect() {
    this.#attempt++;
    const ceiling = Math.min(this.#options.maxDelayMs, this.#options.minDelayMs * 2 ** (this.#attempt - 1));
    const delay = Math.round(ceiling / 2 + Math.random() * ceiling / 2);
    this.#emit("reconnecting", { attempt: this.#attempt, delay });
    this.#timer = setTimeout(async () => {
      try {
        await this.#open();
      } catch {
        return; // the close handler schedules the next attempt
      }

      if (this.#login) {
        try {
          this.#emit("relogin", await this.request("login", this.#login));
        } catch (error) {
          this.#login = null;
          this.#emit("relogin", { error });
        }
      }
    }, delay);
  }

  #receive(text) {
    this.#emit("frame", { direction: "in", text });
    let body;
    try {
      body = JSON.parse(text).body;
    } catch {
      return;
    }

    if (!body || typeof body.action !== "string") {
      return;
    }

    const waiting = body.requestId !== undefined ? this.#pending.get(body.requestId) : undefined;
    if (waiting) {
      this.#pending.delete(body.requestId);
      clearTimeout(waiting.timer);
      if (body.action === "error") {
        const p = body.parameters || {};
        waiting.reject(new GatewayError(p.code, p.message, waiting.action));
      } else {
        waiting.resolve(body.parameters ?? {});
      }
      return;
    }

    if (body.action === "loggedOut") {
      this.#login = null;
    }

    // Pushes: `response` (a pending response), `loggedOut` ({ reason }), and any other server message.
    this.#emit(body.action, body.parameters ?? {});
  }

  #failPending(error) {
    for (const [, waiting] of this.#pending) {
      clearTimeout(waiting.timer);
      waiting.reject(error);
    }
    this.#pending.clear();
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
