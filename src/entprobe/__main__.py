"""``python -m entprobe`` runs the command line."""

from .cli import main

main()
