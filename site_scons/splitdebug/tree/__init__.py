"""A staging root, file by file: `split` (scan, plan, split, links), `rewrite` (one binary, in-process or by
objcopy/eu-strip), `stage` (atomic writes that stay inside the root), `dwz`, `sources` (debugedit, debugsource).
No names are handed on: importing one module does not load the others."""
