"""``python -m lt_core.dashboard [voila options]``: serve the explorer (see :mod:`.serve`)."""

from .serve import main

if __name__ == "__main__":
    main()
