"""Imported by a worker as its warm-up: takes long, like Jesse's import, but bounded. Far longer than any test needs the
worker to stay starting, even on a loaded machine; its pool's shutdown (or its server's death) kills it sooner."""

import time

time.sleep(300)
