import sys

from assist_bot.cli import main

sys.exit(main())
