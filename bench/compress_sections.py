#!/usr/bin/env python3
"""Bytes and CPU of zlib level 6 (objcopy's, dh_strip's) against ISA-L's levels, per DWARF section.

    python3 bench/compress_sections.py DEBUG_DIR

DEBUG_DIR holds uncompressed debug files (e.g. `usr/lib/debug` of a tree split with `compress_debug_sections:
none`); every `.debug_*` section is compressed alone, as the split does. CPU by time.process_time.
"""

from __future__ import annotations

import sys
import time
import zlib
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "site_scons"))

from isal import isal_zlib  # noqa: E402

from splitdebug.elf import read as elfread  # noqa: E402


def main() -> int:
    # name -> [raw bytes, zlib-6 bytes, ISA-L 3 bytes, ISA-L 2 bytes, zlib-6 CPU s, ISA-L 3 CPU s]
    acc: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0, 0, 0.0, 0.0])
    for path in sorted(Path(sys.argv[1]).rglob("*.debug")):
        if path.is_symlink() or not path.is_file():
            continue
        headers = elfread.read_headers(path)
        with open(path, "rb") as f:
            for s in headers.sections:
                if not s.name.startswith(".debug_") or s.type != 1 or not s.size or s.flags & 0x800:
                    continue
                f.seek(s.offset)
                data = f.read(s.size)
                row = acc[s.name]
                row[0] += len(data)
                t = time.process_time()
                row[1] += len(zlib.compress(data, 6))
                row[4] += time.process_time() - t
                t = time.process_time()
                row[2] += len(isal_zlib.compress(data, 3))
                row[5] += time.process_time() - t
                row[3] += len(isal_zlib.compress(data, 2))
    total = [sum(row[k] for row in acc.values()) for k in range(6)]
    print(f"{'section':18} {'raw MB':>8} {'zlib6 MB':>9} {'isal3 MB':>9} {'isal3/z6':>8} {'excess KB':>9} "
          f"{'z6 cpu s':>8} {'i3 cpu s':>8}")
    for name, row in sorted(acc.items(), key=lambda item: item[1][1] - item[1][2]) + [("all", total)]:
        print(f"{name:18} {row[0] / 1e6:8.2f} {row[1] / 1e6:9.2f} {row[2] / 1e6:9.2f} {row[2] / row[1]:8.3f} "
              f"{(row[2] - row[1]) / 1e3:9.0f} {row[4]:8.2f} {row[5]:8.2f}")
    print(f"ISA-L 2 in all: {total[3] / total[1]:.3f} x zlib-6's bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
