"""``python -m deepnetsbench``: the ``deepnets-bench`` command (what ``torchrun -m`` runs)."""

from deepnetsbench.cli import main

if __name__ == "__main__":
    main(prog_name="deepnets-bench")
