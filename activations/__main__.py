"""`python -m activations ...`: see activations/cli."""
import sys

from .cli import main

sys.exit(main())
