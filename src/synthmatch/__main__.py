"""`python -m synthmatch` (and `torchrun -m synthmatch train ...`)."""

from synthmatch.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
