import { test } from 'node:test';
import assert from 'node:assert/strict';
import { detectProtocol } from './inbound.js';
import { removeDotSegments } from './http-proxy.js';

test('protocol detection from the first bytes', () => {
  assert.equal(detectProtocol(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')), 'http2');
  assert.equal(detectProtocol(Buffer.from('PRI * HTTP/2')), undefined, 'a partial preface waits for more');
  assert.equal(detectProtocol(Buffer.from('GET / HTTP/1.1\r\n')), 'http1');
  assert.equal(detectProtocol(Buffer.from('POST /x HTTP/1.1\r\n')), 'http1');
  assert.equal(detectProtocol(Buffer.from('GE')), undefined);
  assert.equal(detectProtocol(Buffer.from([0x16, 0x03, 0x01, 0x00])), 'tcp', 'a TLS ClientHello is opaque');
  assert.equal(detectProtocol(Buffer.from('hello\n')), 'tcp');
});

test('path normalization removes dot segments and keeps slashes', () => {
  assert.equal(removeDotSegments('/public/../admin'), '/admin');
  assert.equal(removeDotSegments('/a/./b/'), '/a/b/');
  assert.equal(removeDotSegments('/../../x'), '/x');
  assert.equal(removeDotSegments('//double//slash'), '//double//slash');
  assert.equal(removeDotSegments('/a/%2e%2e/b'), '/a/%2e%2e/b');
});
