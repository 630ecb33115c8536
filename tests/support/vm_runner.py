"""Run unit test modules inside the MicroPython VM (the in-VM half of the portable suite).

The driver (tests/test_portable.py) writes a script that sets MODULES = [(module, [test
names in source order])] and then appends this file. Each test function is called once per
parametrized case (see vm_pytest.py, installed as `pytest`); a line per failure and a final
"RESULT passed failed" line are printed.
"""

import sys

import pytest


def main(modules):
    passed = 0
    failed = 0
    for name, tests in modules:
        module = __import__(name)
        for test in tests:
            f = getattr(module, test)
            for kwargs in pytest.cases(f):
                try:
                    f(**kwargs)
                    passed += 1
                except Exception as e:  # report and go on, as pytest does
                    failed += 1
                    print("FAIL %s::%s %r: %r" % (name, test, kwargs, e))
                    sys.print_exception(e)
    print("RESULT %d %d" % (passed, failed))


main(MODULES)  # noqa: F821 (set by the driver above this text)
