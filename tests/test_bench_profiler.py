"""bench/hot_path.py's --profiler pyinstrument without pyinstrument installed: a clear usage error saying how to
install it (exit 2, before any database is made), not an ImportError traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_pyinstrument_missing_is_a_clear_usage_error(tmp_path: Path):
    blocked = tmp_path / "pyinstrument"
    blocked.mkdir()
    (blocked / "__init__.py").write_text("raise ImportError('pyinstrument is not installed here')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT / "src")])}
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "hot_path.py"), "--profile", "create", "--profiler",
                           "pyinstrument"], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert "pip install" in done.stderr and "pyinstrument" in done.stderr and "Traceback" not in done.stderr
