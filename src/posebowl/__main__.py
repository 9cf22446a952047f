"""``python -m posebowl``: the same command line as ``posebowl``."""

from posebowl.cli.main import main

if __name__ == "__main__":
    main()
