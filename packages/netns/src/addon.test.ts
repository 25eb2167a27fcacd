// Addon checks that need no root: loading from dist, fd-level calls on ordinary sockets, error shapes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { bindFd, getMark, listenInNetns, loadAddon, setReusePort, socketInNetns } from './addon.js';
import { getSocketFd } from './sockets.js';

test('the addon loads from the compiled code and lists its functions', () => {
  assert.deepEqual(Object.keys(loadAddon()).sort(), [
    'bindFd', 'getMark', 'getOriginalDst', 'listenInNetns', 'setMark', 'setReusePort', 'setTransparent', 'socketInNetns',
  ]);
});

test('getMark reads 0 from an unmarked Node socket, setReusePort works on a Node server fd', async () => {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    assert.equal(getMark(getSocketFd(server)), 0);
    setReusePort(getSocketFd(server));
  } finally {
    server.close();
  }
});

test('a closed fd gives EBADF naming the call and the option', () => {
  assert.throws(() => getMark(1_000_000), (err: NodeJS.ErrnoException) => {
    assert.equal(err.code, 'EBADF');
    assert.equal(err.syscall, 'getsockopt');
    assert.equal(err.message, 'getsockopt(1000000, SO_MARK): Bad file descriptor — the fd is not open');
    return true;
  });
});

test('a missing netns path names open() and the path', () => {
  assert.throws(() => listenInNetns('/var/run/netns/ntx-does-not-exist', '0.0.0.0', 15001), {
    code: 'ENOENT', syscall: 'open',
    message: 'open(/var/run/netns/ntx-does-not-exist): No such file or directory — the network namespace does not exist (pod deleted?)',
  });
  assert.throws(() => socketInNetns('/var/run/netns/ntx-does-not-exist', 4), { code: 'ENOENT' });
});

test('bad arguments are TypeErrors before any syscall', () => {
  assert.throws(() => listenInNetns('/proc/self/ns/net', 'not-an-ip', 1), TypeError);
  assert.throws(() => socketInNetns('/proc/self/ns/net', 5 as 4), TypeError);
  assert.throws(() => bindFd(0, '10.0.0.1', 70000), TypeError);
});
