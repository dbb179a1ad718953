import sys

from embargo_bot.cli.main import main

sys.exit(main())
