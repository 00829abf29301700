"""``python -m uir`` is the ``uir`` command."""

from uir.cli import main

raise SystemExit(main())
