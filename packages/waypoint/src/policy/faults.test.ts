import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileFault, decideFault, FAULT_ABORT_BODY } from './faults.js';
import { PolicyConfigError } from './diagnostics.js';

const where = { object: 'VirtualService default/ratings', field: 'spec.http[0].fault' };
const seq = (...values: number[]) => { let i = 0; return () => values[i++ % values.length]!; };

test('bookinfo ratings delay: 7s fixed delay on 100% of requests', () => {
  const p = compileFault({ delay: { percentage: { value: 100 }, fixedDelay: '7s' } }, where);
  assert.deepEqual(p, { delay: { delayMs: 7000, percent: 100 } });
  assert.deepEqual(decideFault(p, seq(0.999)), { delayMs: 7000, responseFlags: ['DI'] });
});

test('abort 500 on 50% draws against the random source', () => {
  const p = compileFault({ abort: { httpStatus: 500, percentage: { value: 50 } } }, where);
  assert.deepEqual(decideFault(p, seq(0.49)), { abort: { httpStatus: 500 }, responseFlags: ['FI'] });
  assert.deepEqual(decideFault(p, seq(0.5)), { responseFlags: [] });
  assert.equal(FAULT_ABORT_BODY, 'fault filter abort');
});

test('delay and abort draw independently, delay first', () => {
  const p = compileFault({ delay: { fixedDelay: '100ms', percentage: { value: 10 } }, abort: { grpcStatus: 'UNAVAILABLE', percentage: { value: 10 } } }, where);
  assert.deepEqual(decideFault(p, seq(0.05, 0.5)), { delayMs: 100, responseFlags: ['DI'] });
  assert.deepEqual(decideFault(p, seq(0.5, 0.05)), { abort: { grpcStatus: 14 }, responseFlags: ['FI'] });
  assert.deepEqual(decideFault(p, seq(0.01, 0.01)), { delayMs: 100, abort: { grpcStatus: 14 }, responseFlags: ['DI', 'FI'] });
});

test('fractional percentage 0.1 fires for draws below one in a thousand', () => {
  const p = compileFault({ abort: { httpStatus: 503, percentage: { value: 0.1 } } }, where);
  assert.equal(decideFault(p, seq(0.0009)).abort !== undefined, true);
  assert.equal(decideFault(p, seq(0.0011)).abort, undefined);
});

test('deprecated integer percent is honoured; no percentage means the fault never fires', () => {
  assert.deepEqual(compileFault({ delay: { fixedDelay: '1s', percent: 30 } }, where).delay, { delayMs: 1000, percent: 30 });
  const p = compileFault({ abort: { httpStatus: 418 } }, where);
  assert.deepEqual(decideFault(p, seq(0)), { responseFlags: [] });
});

test('invalid fault config names the object and field', () => {
  const bad = (fault: unknown, re: RegExp) => assert.throws(() => compileFault(fault, where), (e: unknown) => e instanceof PolicyConfigError && re.test(e.message));
  bad({}, /VirtualService default\/ratings: spec\.http\[0\]\.fault: at least one of delay or abort/);
  bad({ delay: { percentage: { value: 10 } } }, /fault\.delay\.fixedDelay: is required/);
  bad({ delay: { fixedDelay: 'soon' } }, /fault\.delay\.fixedDelay: invalid duration/);
  bad({ abort: { httpStatus: 700 } }, /fault\.abort\.httpStatus: must be an integer in 200\.\.599/);
  bad({ abort: { grpcStatus: 'NOPE' } }, /fault\.abort\.grpcStatus: must be a gRPC status name/);
  bad({ abort: { httpStatus: 500, grpcStatus: 'INTERNAL' } }, /exactly one of httpStatus or grpcStatus/);
  bad({ abort: { httpStatus: 500, percentage: { value: 101 } } }, /percentage\.value: must be a number in 0\.\.100/);
  bad({ abort: { http2Error: 'REFUSED_STREAM' } }, /http2Error is not supported/);
});
