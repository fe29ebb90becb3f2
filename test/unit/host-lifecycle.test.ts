// The teardown registry: reverse order, each action once, failures collected and
// never thrown; mountinfo parsing that the safety checks rely on.
import t from 'tap';
import { devString, parseMountinfo } from '../../lib/host/mountinfo';
import { once, register, registered, runOwned, teardownAll } from '../../lib/host/lifecycle';

t.test('actions run newest first, each once; unregister removes without running', async (t) => {
  const ran: string[] = [];
  register('loop', () => {
    ran.push('loop');
  });
  const drop = register('tmpdir', () => {
    ran.push('tmpdir');
  });
  register('mount', async () => {
    await new Promise((r) => setTimeout(r, 5));
    ran.push('mount');
  });
  drop();
  drop();
  t.same(registered(), ['loop', 'mount']);
  t.same(await teardownAll(), []);
  t.same(ran, ['mount', 'loop']);
  t.same(await teardownAll(), [], 'a second teardown has nothing left to do');
  t.same(ran, ['mount', 'loop']);
});

t.test('a failing action does not stop the others and is reported', async (t) => {
  const ran: string[] = [];
  register('first', () => {
    ran.push('first');
  });
  register('broken', () => {
    throw new Error('umount: EBUSY');
  });
  register('rejecting', () => Promise.reject(new Error('losetup -d failed')));
  const failures = await teardownAll();
  t.same(failures, [
    { name: 'rejecting', error: 'losetup -d failed' },
    { name: 'broken', error: 'umount: EBUSY' },
  ]);
  t.same(ran, ['first']);
});

t.test('an action still running at the timeout is abandoned and the rest still run', async (t) => {
  const ran: string[] = [];
  register('after', () => {
    ran.push('after');
  });
  register('stuck', () => new Promise<void>(() => undefined));
  const failures = await teardownAll(50);
  t.match(failures, [{ name: 'stuck', error: /still running after 50 ms/ }]);
  t.same(ran, ['after']);
});

t.test('an undo its owner takes out while a teardown runs finishes before the next registered one starts', async (t) => {
  // A run loop that saw the signal tears its config down beside the signal's teardown:
  // the rmdir of a mount point must not start while the owner's unmount of it runs.
  const ran: string[] = [];
  register('rmdir mnt', () => {
    ran.push('rmdir');
  });
  const unmount = async () => {
    await new Promise((r) => setTimeout(r, 30));
    ran.push('unmount done');
  };
  const dropUnmount = register('unmount mnt', unmount);
  register('kill worker', async () => {
    // The owner notices meanwhile: it retires its worker, then takes its unmount out of
    // the registry and runs it (while the teardown was waiting for the retire).
    void runOwned(async () => {
      await new Promise((r) => setTimeout(r, 10));
      ran.push('retired');
    }).then(() => {
      dropUnmount();
      void runOwned(unmount);
    });
    ran.push('killed');
  });
  t.same(await teardownAll(), []);
  t.same(ran, ['killed', 'retired', 'unmount done', 'rmdir']);
});

t.test('signal handlers are installed only while something is registered', async (t) => {
  const before = process.listenerCount('SIGINT');
  const drop = register('x', () => undefined);
  t.equal(process.listenerCount('SIGINT'), before + 1);
  t.equal(process.listenerCount('SIGTERM'), before + 1);
  drop();
  t.equal(process.listenerCount('SIGINT'), before);
});

t.test('once: later calls share the first call', async (t) => {
  let calls = 0;
  const f = once(async () => ++calls);
  t.equal(await f(), 1);
  t.equal(await f(), 1);
  t.equal(calls, 1);
});

t.test('mountinfo: fields, octal escapes, optional fields', async (t) => {
  const text = [
    '27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard',
    '42 27 7:0 / /tmp/with\\040space rw,relatime shared:5 master:1 - xfs /dev/loop0 rw,dax=never,inode64',
    '',
  ].join('\n');
  const entries = parseMountinfo(text);
  t.equal(entries.length, 2);
  t.match(entries[1], { mountId: 42, dev: '7:0', mountPoint: '/tmp/with space', fsType: 'xfs', source: '/dev/loop0', superOptions: 'rw,dax=never,inode64' });
});

t.test('devString decodes glibc dev_t numbers', async (t) => {
  t.equal(devString(254 * 256), '254:0');
  t.equal(devString((7 << 8) | 3), '7:3');
  t.equal(devString((259 << 8) | (0x12 & 0xff) | ((0x312 & ~0xff) << 12)), '259:786');
});
