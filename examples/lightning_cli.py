"""LightningCLI entry point: the callback comes from the YAML config, not from code.

    python examples/lightning_cli.py fit --config examples/lightning_cli.yaml
"""

from __future__ import annotations

import torch
from lightning.pytorch.cli import LightningCLI

from lightning_classifier import TokenClassifier, TokenData


def main() -> None:
    torch.set_num_threads(1)  # a model this small runs fastest on one thread
    LightningCLI(TokenClassifier, TokenData)


if __name__ == "__main__":
    main()
