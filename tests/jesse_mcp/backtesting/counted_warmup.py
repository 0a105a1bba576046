"""A warm-up that records each import: appends the importing process's pid to the file named by
COUNTED_WARMUP_FILE, so a test can count how many times a pool imported its warm-up, and in which process."""

import os

with open(os.environ["COUNTED_WARMUP_FILE"], "a") as f:
    f.write(f"{os.getpid()}\n")
