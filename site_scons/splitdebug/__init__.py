"""splitdebug: split-debug packaging of ELF binaries, for SCons and for any staging tree."""

__version__ = "0.1.0"
