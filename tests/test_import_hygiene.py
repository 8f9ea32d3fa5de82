"""The core (engine, drivers, policies) must import without any UI toolkit (harlequin's pattern).

One fresh interpreter per package imports every module in turn and checks, after each import, that no UI
module has appeared, so the offender is named precisely without paying one interpreter start per module.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UI_MODULES = ("textual", "rich", "textual_image", "textual_plotext")

PROBE = """
import importlib, pkgutil, sys
pkg = importlib.import_module(sys.argv[1])
names = [sys.argv[1]] + [m.name for m in pkgutil.walk_packages(pkg.__path__, prefix=sys.argv[1] + ".")]
ui = {ui!r}
for name in names:
    importlib.import_module(name)
    bad = [m for m in ui if m in sys.modules]
    if bad:
        print(f"{{name}} pulls in {{bad}}")
        sys.exit(1)
print(len(names))
"""


@pytest.mark.parametrize("package", ["engine", "drivers", "policies"])
def test_core_package_imports_without_ui(package: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(ui=UI_MODULES), package],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert int(proc.stdout.strip().splitlines()[-1]) >= 1
