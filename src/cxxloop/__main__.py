"""`python -m cxxloop COMMAND`; the one command so far is `bench`."""

import sys


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("bench",):
        print("usage: python -m cxxloop bench [--rounds N] [--quick] [--only NAME...] [--out DIR]"
              "\n       python -m cxxloop bench --help", file=sys.stderr)
        return 2
    # Imported here so a bare `python -m cxxloop` stays instant.
    from .bench import main as bench

    return bench(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
