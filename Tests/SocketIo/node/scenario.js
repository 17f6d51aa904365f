// Runs one named Socket.IO client scenario against a gateway whose Socket.IO handler is the tests' echo
// handler (Tests/SocketIo/SocketIoTestKit.cs): it greets with "welcome", answers an event through its
// acknowledgement when one is asked for and with "echo" otherwise.
// Usage: node scenario.js <scenario> <server url>. Exit code 0 when the scenario passed; otherwise the
// reason is printed on stderr.
'use strict';

const assert = require('node:assert/strict');

const scenarios = {
  'v4-websocket': () => run(require('socket.io-client').io, { transports: ['websocket'] }, 'websocket'),
  'v4-polling': () => run(require('socket.io-client').io, { transports: ['polling'] }, 'polling'),
  'v4-upgrade': () => run(require('socket.io-client').io, {}, 'upgrade'),
  'v2-default': () => run(require('socket.io-client-v2'), {}, 'upgrade'),
};

const [name, url] = process.argv.slice(2);
if (!scenarios[name] || !url) {
  console.error(`usage: node scenario.js <${Object.keys(scenarios).join('|')}> <server url>`);
  process.exit(2);
}

const deadline = setTimeout(() => {
  console.error(`scenario ${name} did not finish within 30 s`);
  process.exit(1);
}, 30000);

function once(emitter, event) {
  return new Promise((resolve) => emitter.once(event, resolve));
}

function emitWithAck(socket, event, data) {
  return new Promise((resolve) => socket.emit(event, data, (reply) => resolve(reply)));
}

async function exchange(socket, label) {
  const request = { action: 'probe', parameters: { label } };
  assert.deepEqual(await emitWithAck(socket, 'client.to.instance', request), request);
  const echoed = once(socket, 'echo');
  socket.emit('client.to.instance', { action: 'no-ack', parameters: { label } });
  assert.deepEqual(await echoed, { action: 'no-ack', parameters: { label } });
}

async function run(io, options, transport) {
  const socket = io(url, { forceNew: true, reconnection: false, ...options });
  const welcome = once(socket, 'welcome');
  const failed = new Promise((_, reject) => {
    socket.on('connect_error', (error) => reject(new Error(`connect_error: ${error && error.message}`)));
    socket.on('error', (error) => reject(new Error(`error: ${error && (error.message || error)}`)));
  });

  await Promise.race([failed, (async () => {
    await once(socket, 'connect');
    const greeting = await welcome;
    assert.equal(typeof greeting.eio, 'number');
    await exchange(socket, 'first');

    const engine = socket.io.engine;
    if (transport === 'upgrade') {
      if (engine.transport.name !== 'websocket') {
        await once(engine, 'upgrade');
      }
      assert.equal(engine.transport.name, 'websocket');
      await exchange(socket, 'after upgrade');
    } else {
      assert.equal(engine.transport.name, transport);
      await exchange(socket, 'second');
    }
  })()]);

  socket.close();
}

scenarios[name]().then(
  () => {
    clearTimeout(deadline);
    console.log(`scenario ${name} passed`);
    process.exit(0);
  },
  (error) => {
    clearTimeout(deadline);
    console.error(`scenario ${name} failed: ${error && error.stack ? error.stack : error}`);
    process.exit(1);
  });
