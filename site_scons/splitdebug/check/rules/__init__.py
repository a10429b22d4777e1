"""The rules, one module per group of rule ids (SD1xx stripping … SD7xx exports)."""
