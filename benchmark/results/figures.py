"""PNG files a report writes beside itself: the explanation gallery (``gallery/``) and the
probes' figures (``figures/``, such as the shift maps). Each file is written atomically,
and PNGs of an earlier report that this one does not write are removed.
"""

from __future__ import annotations

from pathlib import Path

from benchmark.common.files import atomic_write_bytes

FIGURES_DIR = "figures"


def write_pngs(files: dict[str, bytes], folder: Path) -> list[Path]:
    """Write each ``name -> PNG bytes`` into ``folder``; remove PNGs there this call did not
    write. No files and no folder: nothing happens; an emptied folder is removed."""
    if not files and not folder.is_dir():
        return []
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in files.items():
        path = folder / name
        atomic_write_bytes(path, data)
        written.append(path)
    for old in folder.glob("*.png"):
        if old not in written:
            old.unlink()
    if not written and not any(folder.iterdir()):
        folder.rmdir()
    return written
