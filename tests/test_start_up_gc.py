"""The consumer takes what start-up built out of the cyclic garbage collector's scans, once per
process (stream.heap; pure, no broker; in a fresh interpreter: the collector is process-wide)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import gc
import weakref
from stream.heap import freeze_start_up

class Node:
    pass

start_up = [[] for _ in range(20_000)]  # what start-up keeps (modules, model, clients)
garbage = Node()
garbage.me = garbage  # a cycle start-up left behind
gone = weakref.ref(garbage)
del garbage
assert gc.get_freeze_count() == 0
freeze_start_up()
frozen = gc.get_freeze_count()
assert frozen >= 20_000, frozen  # a full collection no longer walks them
assert gone() is None  # start-up's garbage was collected, not frozen
later = []
later.append(later)  # the loop's garbage is still collected
del later
assert gc.collect() >= 1
freeze_start_up()  # a second consumer in the same process: nothing more is frozen
assert gc.get_freeze_count() == frozen
"""


def test_start_up_objects_are_frozen_once_and_its_garbage_collected_first():
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
