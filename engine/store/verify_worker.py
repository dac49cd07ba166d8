"""The second process of a two-process ``verify`` (``engine.store.verify_parallel``), started
as ``python -m engine.store.verify_worker FD`` with FD its end of the pipe to the main process.
"""

from __future__ import annotations

import sys
from multiprocessing.connection import Connection

from engine.store.verify_parallel import work

if __name__ == "__main__":
    work(Connection(int(sys.argv[1])))
