"""Switchboard: a SIP registrar and proxy.

On a CircuitPython board this file runs at boot: switchboard.board. On a desktop,
`python3 code.py` runs host mode: switchboard.host. Neither path is compiled on the other.
"""

import sys

if sys.implementation.name == "circuitpython":
    try:
        from switchboard.board import main

        main()
    except MemoryError as e:  # the heap ran out before the loop's own guards were in place
        print("Switchboard: out of memory at start (%r); see docs/hardware.md, Heap" % (e,))
elif __name__ == "__main__":
    import os

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
    from switchboard.host import main

    sys.exit(main())
