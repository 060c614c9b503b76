/** Resource flags as Docker users write them, and the refusals that name the flag and the form. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { UsageError } from '../errors/index.js';
import { parseLimits, parseMemory, parseUlimits } from './limits.js';

test('sizes, CPUs and the rest become cgroup limits', () => {
  assert.is(parseMemory('64m', '--memory'), 64 << 20);
  assert.is(parseMemory('1.5g', '--memory'), 1.5 * 2 ** 30);
  assert.is(parseMemory('4096', '--memory'), 4096);
  assert.is(parseMemory('2KB', '--memory'), 2048);
  const l = parseLimits({ memory: '64m', memorySwap: '128m', cpus: '0.5', pidsLimit: '100', cpuShares: '512', cpusetCpus: '0' });
  assert.equal(l, { memory: 64 << 20, memorySwap: 128 << 20, cpuPeriod: 100000, cpuQuota: 50000, cpuShares: 512, cpusetCpus: '0', pidsLimit: 100 });
  assert.is(parseLimits({ memory: '64m', memorySwap: '-1' }).memorySwap, -1);
});

test('bad values are refused with the flag and the accepted form', () => {
  const refuse = (f: Parameters<typeof parseLimits>[0], re: RegExp) => assert.throws(() => parseLimits(f), (e: unknown) => e instanceof UsageError && re.test(e.message));
  refuse({ memory: '12qb' }, /^--memory 12qb: use a number with an optional unit b, k, m, g/);
  refuse({ cpus: '-1' }, /^--cpus -1: use a positive number of CPUs/);
  refuse({ cpus: '0' }, /^--cpus 0: use a positive number/);
  refuse({ cpus: '999' }, /^--cpus 999: this machine has \d+ CPUs/);
  refuse({ cpus: '1', cpuQuota: '50000' }, /exclusive/);
  refuse({ memorySwap: '1g' }, /--memory-swap needs --memory too/);
  refuse({ memory: '1g', memorySwap: '512m' }, /must be at least --memory/);
  refuse({ pidsLimit: 'lots' }, /^--pids-limit lots: use a whole number/);
  refuse({ blkioWeight: '5' }, /^--blkio-weight 5: use a whole number from 10 to 1000/);
  refuse({ cpusetCpus: '0-999' }, /^--cpuset-cpus 0-999: this machine has CPUs 0-/);
  refuse({ cpusetCpus: 'x' }, /use a list such as 0-1,3/);
  refuse({ deviceReadBps: ['/dev/null:1mb'] }, /is not a block device/);
});

test('--ulimit: names, soft and hard, never above this host\'s hard limit', () => {
  const host = new Map([['RLIMIT_NOFILE', { soft: 1024, hard: 4096 }], ['RLIMIT_NPROC', { soft: -1, hard: -1 }]]);
  assert.equal(parseUlimits(['nofile=1024:2048', 'nproc=50'], () => host), [{ type: 'RLIMIT_NOFILE', soft: 1024, hard: 2048 }, { type: 'RLIMIT_NPROC', soft: 50, hard: 50 }]);
  assert.throws(() => parseUlimits(['nofile=8192'], () => host), /above this host's hard limit 4096 for nofile \(raising it needs CAP_SYS_RESOURCE\); use at most 4096/);
  assert.throws(() => parseUlimits(['nofile=-1'], () => host), /above this host's hard limit/);
  assert.throws(() => parseUlimits(['files=10'], () => host), /use NAME=SOFT\[:HARD\] with a name from/);
  assert.throws(() => parseUlimits(['nofile=10:5'], () => host), /soft limit is above the hard limit/);
});

test.run();
