// Runs one named scenario of a real Socket.IO client against the gateway itself (its Socket.IO endpoint served by
// the session core), with raw /ws beside it for takeovers. The gateway must let clients send to each other
// (Protocol:ClientSend=any).
// Usage: node gateway.js <scenario> <server url>. Exit code 0 when the scenario passed; otherwise the reason is
// printed on stderr.
'use strict';

const assert = require('node:assert/strict');
const WebSocket = require('ws');

const REQUEST = 'client.to.instance';
const REPLY = 'instace.to.client';

// The step a scenario is at, for the failure message.
let step = 'connect';

const scenarios = {
  'v4-websocket': () => run(require('socket.io-client').io, { transports: ['websocket'] }, 'websocket'),
  'v4-polling': () => run(require('socket.io-client').io, { transports: ['polling'] }, 'polling'),
  'v4-upgrade': () => run(require('socket.io-client').io, {}, 'upgrade'),
  'v2-default': () => run(require('socket.io-client-v2'), {}, 'upgrade'),
};

const [name, url] = process.argv.slice(2);
if (!scenarios[name] || !url) {
  console.error(`usage: node gateway.js <${Object.keys(scenarios).join('|')}> <server url>`);
  process.exit(2);
}

const deadline = setTimeout(() => {
  console.error(`scenario ${name} did not finish within 45 s (step '${step}')`);
  process.exit(1);
}, 45000);

function within(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within 15 s`)), 15000);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function once(emitter, event) {
  return within(new Promise((resolve) => emitter.once(event, resolve)), `'${event}'`);
}

// The reply events a socket receives, in order, for the specification's way of talking: emit, then listen.
function inbox(socket) {
  const queued = [];
  const waiting = [];
  socket.on(REPLY, (body) => {
    if (waiting.length > 0) {
      waiting.shift()(body);
    } else {
      queued.push(body);
    }
  });
  return () => within(new Promise((resolve) => {
    if (queued.length > 0) {
      resolve(queued.shift());
    } else {
      waiting.push(resolve);
    }
  }), `'${REPLY}' event`);
}

// A request with an acknowledgement: the reply comes through it, not as an event.
function request(socket, action, parameters) {
  return within(new Promise((resolve) => socket.emit(REQUEST, { action, parameters }, resolve)), `ack to ${action}`);
}

// A request written exactly to the specification: no request id, no acknowledgement; the reply is the next event.
async function specRequest(socket, next, action, parameters) {
  socket.emit(REQUEST, { action, parameters });
  const reply = await next();
  assert.equal(reply.requestId, undefined);
  return reply;
}

// Raw /ws, for takeovers across transports.
async function rawWs(action, parameters) {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws').replace(/\/$/, '')}/ws`);
  const messages = [];
  const waiting = [];
  let closed = false;
  ws.on('message', (data) => {
    const body = JSON.parse(data.toString()).body;
    if (waiting.length > 0) {
      waiting.shift()(body);
    } else {
      messages.push(body);
    }
  });
  const closing = new Promise((resolve) => ws.on('close', () => { closed = true; resolve(); }));
  await once(ws, 'open');
  const next = () => within(new Promise((resolve) => (messages.length > 0 ? resolve(messages.shift()) : waiting.push(resolve))), 'a /ws message');
  ws.send(JSON.stringify({ event: REQUEST, body: { action, parameters } }));
  return { ws, next, closed: () => within(closing, 'the close of /ws'), isClosed: () => closed };
}

function connect(io, options) {
  const socket = io(url, { forceNew: true, reconnection: false, ...options });
  socket.on('connect_error', (error) => console.error(`connect_error: ${error && error.message}`));
  return socket;
}

async function run(io, options, transport) {
  const socket = connect(io, options);
  const next = inbox(socket);
  await once(socket, 'connect');
  const engine = socket.io.engine;

  step = 'register';
  // Register as the specification does, and a sender with an acknowledgement.
  const registered = await specRequest(socket, next, 'register', { information: { name: `node ${name}` } });
  assert.equal(registered.action, 'registered');
  const { token, id } = registered.parameters;
  const sender = await request(socket, 'register', { information: { name: 'sender' } });
  assert.equal(sender.action, 'registered');

  step = 'login with a queued response';
  // A response waits in the queue; the login brings it.
  const queued = await request(socket, 'send', { token: sender.parameters.token, to: id, payload: { n: 1 } });
  assert.equal(queued.parameters.delivered, 'queued');
  const logged = await request(socket, 'login', { token });
  assert.equal(logged.action, 'logged');
  assert.equal(logged.parameters.queue.length, 1);
  assert.deepEqual(logged.parameters.queue[0].payload, { n: 1 });

  step = 'update';
  const updated = await specRequest(socket, next, 'update', { token, information: { name: `node ${name}`, location: 'Turin' } });
  assert.equal(updated.action, 'updated');

  if (transport !== 'upgrade') {
    assert.equal(engine.transport.name, transport);
  }

  step = 'live push';
  // A live push, as the reply event (on polling for the polling-only client).
  const live = await request(socket, 'send', { token: sender.parameters.token, to: id, payload: { n: 2 } });
  assert.equal(live.parameters.delivered, 'online');
  const push = await next();
  assert.equal(push.action, 'response');
  assert.equal(push.parameters.seq, live.parameters.seq);
  assert.deepEqual(push.parameters.payload, { n: 2 });

  if (transport === 'upgrade') {
    if (engine.transport.name !== 'websocket') {
      await once(engine, 'upgrade');
    }
    assert.equal(engine.transport.name, 'websocket');
  }

  step = 'errors';
  // Errors come back and the socket stays.
  const unknown = await request(socket, 'fly', {});
  assert.equal(unknown.action, 'error');
  assert.equal(unknown.parameters.code, 'unknown_action');
  socket.emit(REQUEST, 'not an object');
  const refused = await next();
  assert.equal(refused.parameters.code, 'bad_request');
  socket.emit('some.other.event', { action: 'ping' });
  assert.equal((await next()).parameters.code, 'bad_request');
  assert.equal((await request(socket, 'ping', {})).action, 'pinged');
  assert.equal(socket.connected, true);

  step = 'ack mode';
  // Ack mode on a second Socket.IO socket: a push is acknowledged with 'ack'.
  const careful = connect(io, options);
  const carefulNext = inbox(careful);
  await once(careful, 'connect');
  const carefulClient = await request(careful, 'register', { information: { name: 'careful' } });
  await request(careful, 'login', { token: carefulClient.parameters.token, ack: true });
  const kept = await request(socket, 'send', { token: sender.parameters.token, to: carefulClient.parameters.id, payload: 'keep me' });
  const keptPush = await carefulNext();
  assert.equal(keptPush.parameters.seq, kept.parameters.seq);
  const acked = await request(careful, 'ack', { upTo: keptPush.parameters.seq });
  assert.equal(acked.action, 'acked');
  assert.equal(acked.parameters.upTo, keptPush.parameters.seq);
  careful.close();

  step = 'takeover to /ws';
  // Takeover from Socket.IO to /ws: this socket is told, then disconnected by the server.
  const disconnected = once(socket, 'disconnect');
  const ws = await rawWs('login', { token });
  assert.equal((await ws.next()).action, 'logged');
  const told = await next();
  assert.equal(told.action, 'loggedOut');
  assert.equal(told.parameters.reason, 'takeover');
  assert.equal(await disconnected, 'io server disconnect');

  step = 'takeover back from /ws';
  // And back, from /ws to a new Socket.IO socket.
  const back = connect(io, options);
  await once(back, 'connect');
  assert.equal((await request(back, 'login', { token })).action, 'logged');
  const wsTold = await ws.next();
  assert.equal(wsTold.action, 'loggedOut');
  assert.equal(wsTold.parameters.reason, 'takeover');
  await ws.closed();
  back.close();
}

scenarios[name]().then(
  () => {
    clearTimeout(deadline);
    console.log(`scenario ${name} passed`);
    process.exit(0);
  },
  (error) => {
    clearTimeout(deadline);
    console.error(`scenario ${name} failed at step '${step}': ${error && error.stack ? error.stack : error}`);
    process.exit(1);
  });
