"""``python -m driftcal`` runs the command-line interface."""

from driftcal.cli import main

raise SystemExit(main())
