"""Entry point of `python -m vae_core`."""
import sys

from vae_core.cli import main

if __name__ == "__main__":
    sys.exit(main())
