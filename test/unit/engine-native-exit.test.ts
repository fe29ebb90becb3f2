// A process that exits while one of the addon's blocking calls is still on its
// thread must exit normally. Node finalizes the call's thread-safe function during
// teardown; settling (or even calling) it then used to abort the process
// ("FATAL ERROR: Error::ThrowAsJavaScriptException napi_throw", or a silent SIGABRT
// in uv_mutex_lock) in nearly every run.
import { spawn } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';

const NATIVE = path.join(__dirname, '..', '..', 'lib', 'native.js');

// Starts an ftruncate of an 8 MiB file on its own thread and lets the event loop
// empty at once: node tears down while the call is (or has just been) in the kernel.
const CHILD = `
const fs = require('node:fs');
const { native } = require(${JSON.stringify(NATIVE)});
const f = require('node:path').join(${JSON.stringify(os.tmpdir())}, 'daxpin-exit-' + process.pid);
const fd = fs.openSync(f, 'w+');
fs.writeSync(fd, Buffer.alloc(8 << 20, 1));
fs.unlinkSync(f);
native.startFtruncate(fd, 0).promise.catch(() => {});
`;

const runChild = () =>
  new Promise<{ code: number | null; signal: string | null; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, ['-e', CHILD], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });

t.test('exiting with a blocking call in flight is a normal exit', async (t) => {
  for (let i = 0; i < 12; i++) {
    const r = await runChild();
    if (r.code !== 0) {
      t.fail(`run ${i}: exit ${r.code} signal ${r.signal}: ${r.stderr.split('\n')[0]}`);
      return;
    }
  }
  t.pass('12 runs exited 0');
});
