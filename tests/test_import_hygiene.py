"""The core (engine, drivers, policies) must import without any UI toolkit (harlequin's pattern)."""

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE_PACKAGES = ["engine", "drivers", "policies"]
UI_MODULES = ("textual", "rich", "textual_image", "textual_plotext")


def _core_modules() -> list[str]:
    names = []
    for pkg in CORE_PACKAGES:
        names.append(pkg)
        for info in pkgutil.walk_packages([str(ROOT / pkg)], prefix=f"{pkg}."):
            names.append(info.name)
    return names


@pytest.mark.parametrize("module", _core_modules())
def test_core_module_imports_without_ui(module: str) -> None:
    code = (
        "import sys, importlib\n"
        f"importlib.import_module({module!r})\n"
        f"bad = [m for m in {UI_MODULES!r} if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
