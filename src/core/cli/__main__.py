"""`python -m core.cli`: the same as the `core` console script."""

from core.cli import main

if __name__ == "__main__":
    main()
