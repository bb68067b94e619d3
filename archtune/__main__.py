"""`python -m archtune` runs the archtune command."""

from archtune.cli import main

main()
