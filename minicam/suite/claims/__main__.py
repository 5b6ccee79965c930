"""python -m minicam.suite.claims: compute the suite's claims and write results.json (--check, --list, --only)."""
import sys

from minicam.suite.claims import main

sys.exit(main())
