"""``python -m explorer`` runs the llm2silicon command line."""

import sys

from .cli import main

sys.exit(main())
