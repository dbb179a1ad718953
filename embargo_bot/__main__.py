import sys

from embargo_bot.cli.main import entry_point

sys.exit(entry_point())
