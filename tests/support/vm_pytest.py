"""The few pytest features the core's unit tests use, for running them on the MicroPython VM.

Copied into the VM as `pytest.py` by tests/support/vm_runner.py's driver (tests/
test_portable.py); never imported under CPython, where the real pytest runs the same
modules. Provides `pytest.raises` (a context manager with `.value`) and
`pytest.mark.parametrize` (stacked decorators make the cartesian product, as in pytest).
MicroPython functions take no attributes, so parameters are kept in a dict by function.
"""

_PARAMS = {}


class _Raises:
    def __init__(self, expected):
        self.expected = expected
        self.value = None

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        if kind is None:
            raise AssertionError("DID NOT RAISE %r" % (self.expected,))
        if not issubclass(kind, self.expected):
            return False
        self.value = value
        return True


def raises(expected):
    """Context manager: the block must raise expected (its instance lands in .value)."""
    return _Raises(expected)


class _Mark:
    def parametrize(self, names, cases):
        """Run the test once per case; names is "a" or "a, b" as in pytest."""
        def decorate(f):
            if f not in _PARAMS:
                _PARAMS[f] = []
            _PARAMS[f].insert(0, (names, cases))
            return f
        return decorate


mark = _Mark()


def cases(f):
    """Every keyword-argument dict f is to be called with (one {} when not parametrized)."""
    combos = [{}]
    for names, values in _PARAMS.get(f, ()):
        keys = [n.strip() for n in names.split(",") if n.strip()]
        grown = []
        for combo in combos:
            for value in values:
                row = (value,) if len(keys) == 1 else tuple(value)
                d = dict(combo)
                for i in range(len(keys)):
                    d[keys[i]] = row[i]
                grown.append(d)
        combos = grown
    return combos
