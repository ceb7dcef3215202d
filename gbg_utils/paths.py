"""Project paths, in one place: everything relative resolves from the project root, whatever the cwd."""

from __future__ import annotations

from pathlib import Path

PROJ_ROOT = Path(__file__).resolve().parents[1]
OUTPUTS = PROJ_ROOT / "outputs"


def from_root(path: str | Path) -> Path:
    """An absolute path as it is; a relative one against the project root (not the kernel's cwd)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else PROJ_ROOT / p
