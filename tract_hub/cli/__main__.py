"""``python -m tract_hub.cli`` (what ``torchrun ... -m tract_hub.cli train RECIPE`` runs in each process)."""

import sys

from . import main

sys.exit(main())
