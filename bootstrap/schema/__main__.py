import sys

from bootstrap.schema.bundle import main

sys.exit(main())
