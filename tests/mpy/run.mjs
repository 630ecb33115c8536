// Run a Python script under the MicroPython WebAssembly VM with a library folder on sys.path.
//
//   node run.mjs [--heap=BYTES] LIBDIR SCRIPT.py
//
// Every .py file under LIBDIR is copied (keeping its folders) into the VM's filesystem under
// /lib, which is put on sys.path; SCRIPT.py then runs as __main__. The script's stdout is
// written to stdout. A Python exception prints its traceback on stderr and exits 1;
// sys.exit(n) exits n; a harness problem (missing file, bad arguments) exits 2.

import fs from "node:fs";
import path from "node:path";
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

const DEFAULT_HEAP = 2 * 1024 * 1024;
const VM_LIB = "/lib";
const VM_SCRIPTS = "/scripts";

function usage(message) {
  process.stderr.write(`run.mjs: ${message}\nusage: node run.mjs [--heap=BYTES] LIBDIR SCRIPT.py\n`);
  process.exit(2);
}

let heap = DEFAULT_HEAP;
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
if (!fs.existsSync(libDir) || !fs.statSync(libDir).isDirectory()) usage(`no such folder: ${libDir}`);
if (!fs.existsSync(scriptPath) || !fs.statSync(scriptPath).isFile()) usage(`no such file: ${scriptPath}`);

// Output is gathered byte by byte and written once, so a last line without "\n" is kept.
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
      // EEXIST: the folder is already there.
    }
  }
}

function copyTree(hostDir, vmDir) {
  mkdirs(vmDir);
  for (const entry of fs.readdirSync(hostDir, { withFileTypes: true })) {
    if (entry.name === "__pycache__" || entry.name === "node_modules" || entry.name.startsWith(".")) {
      continue;
    }
    const hostPath = path.join(hostDir, entry.name);
    const vmPath = `${vmDir}/${entry.name}`;
    if (entry.isDirectory()) {
      copyTree(hostPath, vmPath);
    } else if (entry.isFile() && entry.name.endsWith(".py")) {
      mp.FS.writeFile(vmPath, fs.readFileSync(hostPath));
    }
  }
}

copyTree(path.resolve(libDir), VM_LIB);
mkdirs(VM_SCRIPTS);
const vmScript = `${VM_SCRIPTS}/${path.basename(scriptPath)}`;
mp.FS.writeFile(vmScript, fs.readFileSync(scriptPath));

// The driver compiles the script under its own name so tracebacks point into it.
const driver = [
  "import sys",
  `if ${JSON.stringify(VM_LIB)} not in sys.path:`,
  `    sys.path.insert(0, ${JSON.stringify(VM_LIB)})`,
  `with open(${JSON.stringify(vmScript)}) as _f:`,
  "    _src = _f.read()",
  `exec(compile(_src, ${JSON.stringify(vmScript)}, "exec"),`,
  `     {"__name__": "__main__", "__file__": ${JSON.stringify(vmScript)}})`,
  "",
].join("\n");

function flush() {
  if (stdoutBytes.length) process.stdout.write(Buffer.from(stdoutBytes));
  if (stderrBytes.length) process.stderr.write(Buffer.from(stderrBytes));
}

let status = 0;
try {
  mp.runPython(driver);
} catch (err) {
  if (err && err.type === "SystemExit") {
    // sys.exit(n): the message is the exit value (empty or None for 0).
    const text = String(err.message).trim().split("\n").pop().replace(/^SystemExit:?\s*/, "");
    const code = text === "" || text === "None" ? 0 : Number(text);
    status = Number.isInteger(code) ? code : 1;
    if (!Number.isInteger(code)) stderrBytes.push(...Buffer.from(text + "\n"));
  } else if (err && err.type) {
    stderrBytes.push(...Buffer.from(String(err.message)));
    if (!String(err.message).endsWith("\n")) stderrBytes.push(10);
    status = 1;
  } else {
    stderrBytes.push(...Buffer.from(`run.mjs: ${err && err.stack ? err.stack : err}\n`));
    status = 2;
  }
}
flush();
process.exitCode = status;
