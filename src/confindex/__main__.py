"""`python -m confindex` runs the CLI."""

from confindex.cli import main

main()
