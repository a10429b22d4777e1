"""ELF files, never DWARF: `read` (struct-based, lazy headers, notes, symbols) and `write` (the in-process split)."""
