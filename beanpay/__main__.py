"""`python -m beanpay`: the same command as `beanpay` (the entry point lives in the composition root)."""

import sys

from beanpay.cli.main import main

sys.exit(main())
