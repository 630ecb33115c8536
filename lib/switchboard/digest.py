"""The hash functions of digest authentication: md5 and sha256 constructors, cheapest first.

- CircuitPython: `hashlib.new("sha256")` (and "sha1") only, in C (mbedtls); no MD5, no
  `hashlib.sha256` attribute.
- MicroPython and CPython: `hashlib.sha256`, `hashlib.md5` where built in.
- Otherwise one module of adafruit_hashlib, imported alone: `_md5` (about 8 KB of heap on the
  32-bit VM) or `_sha256`, never the package, whose __init__ imports all six hashes (33 KB).

Imported only when SIP_AUTH is not off (auth.py asks for it then), so a board without digest
loads no hash code at all. `backends` records what was chosen, for /api/status.
"""

import sys

backends = {}  # "md5"/"sha256" -> where the constructor came from


def _native(name):
    try:
        import hashlib
    except ImportError:
        return None
    new = getattr(hashlib, "new", None)
    if new is not None:  # CircuitPython, CPython
        try:
            new(name, b"").digest()

            def make(data=b""):
                return new(name, data)

            return make, "hashlib.new"
        except (ValueError, OSError, TypeError, RuntimeError):
            pass
    make = getattr(hashlib, name, None)
    if make is not None:
        try:
            make(b"").digest()
            return make, "hashlib." + name
        except (ValueError, OSError):
            pass
    return None


def _library_folder():
    """The folder of adafruit_hashlib on sys.path, found without importing the package."""
    import os

    for entry in sys.path:
        folder = (entry or ".") + "/adafruit_hashlib"
        for ext in (".mpy", ".py"):
            try:
                os.stat(folder + "/_md5" + ext)
                return folder
            except OSError:
                pass
    return None


def _alone(module, attr):
    """adafruit_hashlib's `module` (e.g. _md5) imported as a top-level module, so that the
    package's __init__ (all six hashes) is not."""
    found = sys.modules.get(module)
    if found is None:
        folder = _library_folder()
        if folder is None:
            return None
        sys.path.append(folder)
        try:
            found = __import__(module)
        except ImportError:
            return None
        finally:
            sys.path.remove(folder)
    return getattr(found, attr, None)


def hasher(name):
    """A constructor make(data) -> object with digest(), for "md5" or "sha256"; or None."""
    got = _native(name)
    if got is not None:
        backends[name] = got[1]
        return got[0]
    make = _alone("_" + name, name)
    if make is not None:
        backends[name] = "adafruit_hashlib._" + name
    return make
