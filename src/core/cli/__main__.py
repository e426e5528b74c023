"""`python -m core.cli`: the same as the `core` console script."""

from core.cli import console

if __name__ == "__main__":
    console()
