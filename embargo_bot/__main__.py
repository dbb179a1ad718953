import sys

from embargo_bot.cli import main

sys.exit(main())
