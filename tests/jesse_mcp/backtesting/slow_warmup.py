"""Imported by a worker as its warm-up: takes long, like Jesse's import, but bounded."""

import time

time.sleep(20)
