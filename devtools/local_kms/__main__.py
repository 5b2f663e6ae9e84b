"""``python -m devtools.local_kms --port 4566 [--create-platform-keys us=us-west-2,eu=eu-central-1]``."""

from .server import main

raise SystemExit(main())
