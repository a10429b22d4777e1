"""The `splitdebug` command: `main` parses and dispatches; one module per subcommand. Names handed on."""

from .main import SUBCOMMANDS, build_parser, main, subcommand

__all__ = ["SUBCOMMANDS", "build_parser", "main", "subcommand"]
