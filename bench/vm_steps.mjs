// Run a measuring script under the MicroPython WebAssembly VM in steps, for bench/vm_memory.py.
//
//   node bench/vm_steps.mjs [--heap=BYTES] LIBDIR SCRIPT.py
//
// Why not tests/mpy/run.mjs: this VM build (MICROPY_GC_SPLIT_HEAP_AUTO) never collects inside a
// runPython() call. gc.collect() only marks a collection as pending; it happens when control
// returns to JavaScript, where no stack holds pointers (ports/webassembly/main.c,
// gc_collect_top_level). Within one call gc.mem_alloc() only grows, garbage included.
//
// So: SCRIPT.py is run once to define things in __main__; it must define a generator function
// steps(). This runner then calls next() on it, one runPython() per step, with gc.collect() after
// each: whenever the script yields, the heap is really collected before it resumes. Objects the
// script keeps (globals, the generator's locals) survive; garbage does not.
// Every .py and .mpy under LIBDIR is copied into the VM under /lib (on sys.path), as run.mjs
// does for .py (.mpy: compiled by MicroPython's mpy-cross, which this VM loads).

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PACKAGE = path.join(HERE, "..", "tests", "mpy", "node_modules", "@micropython",
  "micropython-webassembly-pyscript", "micropython.mjs");
const VM_LIB = "/lib";

function usage(message) {
  process.stderr.write(`vm_steps.mjs: ${message}\n` +
    "usage: node vm_steps.mjs [--heap=BYTES] LIBDIR SCRIPT.py\n");
  process.exit(2);
}

let heap = 2 * 1024 * 1024;
const positional = [];
for (const arg of process.argv.slice(2)) {
  if (arg.startsWith("--heap=")) {
    heap = Number(arg.slice("--heap=".length));
    if (!Number.isInteger(heap) || heap < 64 * 1024) usage(`bad heap size: ${arg}`);
  } else if (arg.startsWith("--")) {
    usage(`unknown option ${arg}`);
  } else {
    positional.push(arg);
  }
}
if (positional.length !== 2) usage("expected LIBDIR and SCRIPT.py");
const [libDir, scriptPath] = positional;
if (!fs.existsSync(PACKAGE)) usage(`the VM is not installed (${PACKAGE}): run bash tools/test`);
if (!fs.existsSync(libDir) || !fs.statSync(libDir).isDirectory()) usage(`no such folder: ${libDir}`);
if (!fs.existsSync(scriptPath)) usage(`no such file: ${scriptPath}`);

const { loadMicroPython } = await import(pathToFileURL(PACKAGE).href);
const stdoutBytes = [];
const stderrBytes = [];
const mp = await loadMicroPython({
  heapsize: heap,
  linebuffer: false,
  stdout: (bytes) => { for (const b of bytes) stdoutBytes.push(b); },
  stderr: (bytes) => { for (const b of bytes) stderrBytes.push(b); },
});

function mkdirs(vmPath) {
  let current = "";
  for (const part of vmPath.split("/").filter(Boolean)) {
    current += "/" + part;
    try {
      mp.FS.mkdir(current);
    } catch (err) {
      // EEXIST
    }
  }
}

function copyTree(hostDir, vmDir) {
  mkdirs(vmDir);
  for (const entry of fs.readdirSync(hostDir, { withFileTypes: true })) {
    if (entry.name === "__pycache__" || entry.name.startsWith(".")) continue;
    const hostPath = path.join(hostDir, entry.name);
    if (entry.isDirectory()) {
      copyTree(hostPath, `${vmDir}/${entry.name}`);
    } else if (entry.isFile() && (entry.name.endsWith(".py") || entry.name.endsWith(".mpy"))) {
      mp.FS.writeFile(`${vmDir}/${entry.name}`, fs.readFileSync(hostPath));
    }
  }
}

function flush() {
  if (stdoutBytes.length) process.stdout.write(Buffer.from(stdoutBytes));
  if (stderrBytes.length) process.stderr.write(Buffer.from(stderrBytes));
}

copyTree(path.resolve(libDir), VM_LIB);
let status = 0;
try {
  mp.runPython(`import sys\nif "${VM_LIB}" not in sys.path:\n    sys.path.insert(0, "${VM_LIB}")\n`);
  mp.runPython(fs.readFileSync(scriptPath, "utf8"));
  mp.runPython("_steps = steps()\nimport gc\ngc.collect()");
  for (let i = 0; i < 1000000; i++) {
    try {
      mp.runPython("next(_steps)\ngc.collect()");
    } catch (err) {
      if (err && err.type === "StopIteration") break;
      throw err;
    }
  }
} catch (err) {
  if (err && err.type) {
    stderrBytes.push(...Buffer.from(`${err.type}: ${err.message}\n`));
    status = 1;
  } else {
    stderrBytes.push(...Buffer.from(`vm_steps.mjs: ${err && err.stack ? err.stack : err}\n`));
    status = 2;
  }
}
flush();
process.exitCode = status;
