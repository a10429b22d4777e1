"""The SCons glue, thin: `tool` (the emitters and InstallStripped), `exports` (export lists), `distro` (prefix
maps, sources, SplitDebugPackage), `env` (construction variables to plain data)."""
