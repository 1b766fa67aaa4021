"""``python -m yardarm`` runs the CLI."""

from yardarm.cli import main

raise SystemExit(main())
