"""`python -m warrant` runs the command line."""

from warrant.cli import main

main()
