import sys

from popctl.cli import main

sys.exit(main())
