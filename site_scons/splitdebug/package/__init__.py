"""Packages from a split tree: `common` (metadata, the prepared copy), `rpm`, `deb`, and `build`, which
chooses between them."""
