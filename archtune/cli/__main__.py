"""`python -m archtune.cli` runs the archtune command."""

from archtune.cli import main

main()
