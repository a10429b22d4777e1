"""debhelper: `dh_splitdebug`, run by `dh` (or an override) in place of dh_dwz and dh_strip. Importing
one module does not load the others."""
