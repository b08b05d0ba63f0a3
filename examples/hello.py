# /// script
# requires-python = ">=3.11"
# dependencies = ["rich>=13"]
# ///
"""Greets the world in colour: `runner run examples/hello.py [NAME]`."""

import sys

from rich.console import Console

name = sys.argv[1] if len(sys.argv) > 1 else "world"
Console().print(f"Hello, [bold green]{name}[/]! (Python {sys.version.split()[0]})")
