"""Small real models, data and a LightningModule factory shared by the runtime tests and scripts."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

OptimizerFactory = Callable[[nn.Module], Any]


def mlp() -> nn.Module:
    """Two Linear layers with biases: input (N, 4), output (N, 2)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


def cnn() -> nn.Module:
    """Conv -> BatchNorm -> ReLU -> pool -> Linear: input (N, 3, 8, 8), output (N, 2)."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, bias=False),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 2),
    )


def tiny_bert() -> nn.Module:
    """A BERT encoder from a config (random weights, nothing downloaded)."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=32,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=16,
        type_vocab_size=2,
    )
    return BertModel(config, add_pooling_layer=True)


def tiny_gpt2() -> nn.Module:
    """A GPT-2 language model from a config; its output head is tied to the token embedding."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=32, n_embd=8, n_layer=1, n_head=2, n_positions=16))


def inputs_for(net: nn.Module, n: int = 8) -> torch.Tensor:
    """A batch of inputs that ``net`` (one of the models above) accepts."""
    generator = torch.Generator().manual_seed(1)
    if isinstance(net[0] if isinstance(net, nn.Sequential) else None, nn.Conv2d):
        return torch.randn(n, 3, 8, 8, generator=generator)
    return torch.randn(n, 4, generator=generator)


class GuardedModule(pl.LightningModule):
    """A LightningModule around ``net`` whose optimizers come from ``optimizer_factory(net)``.

    ``configure_optimizers`` returns whatever the factory returns (one optimizer, a list, a
    dict with a scheduler, or None), so each test picks the configuration it needs.
    """

    def __init__(self, net: nn.Module, optimizer_factory: Optional[OptimizerFactory], manual: bool = False) -> None:
        super().__init__()
        self.net = net
        self.optimizer_factory = optimizer_factory
        self.automatic_optimization = not manual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: Any, batch_idx: int) -> Optional[torch.Tensor]:
        x, y = batch
        loss = nn.functional.mse_loss(self(x).float(), y)
        if self.automatic_optimization:
            return loss
        optimizers = self.optimizers()
        for opt in optimizers if isinstance(optimizers, list) else [optimizers]:
            opt.zero_grad()
            self.manual_backward(loss, retain_graph=True)
            opt.step()
        return None

    def configure_optimizers(self) -> Any:
        return None if self.optimizer_factory is None else self.optimizer_factory(self.net)

    def train_dataloader(self) -> DataLoader:
        x = inputs_for(self.net, 16)
        y = torch.randn(16, 2, generator=torch.Generator().manual_seed(2))
        return DataLoader(TensorDataset(x, y), batch_size=4)


def trainer_kwargs(tmp_path: Any, **overrides: Any) -> Dict[str, Any]:
    """A quiet CPU Trainer configuration for a few steps."""
    kwargs: Dict[str, Any] = dict(
        accelerator="cpu",
        devices=1,
        max_steps=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
    )
    kwargs.update(overrides)
    return kwargs


def fit(module: pl.LightningModule, tmp_path: Any, callbacks: Any, **overrides: Any) -> pl.Trainer:
    """Run a short real fit and return the Trainer."""
    trainer = pl.Trainer(callbacks=callbacks, **trainer_kwargs(tmp_path, **overrides))
    trainer.fit(module)
    return trainer


class CliModule(GuardedModule):
    """A LightningModule that LightningCLI can build from YAML: an MLP with AdamW."""

    def __init__(self, weight_decay: float = 0.05, lr: float = 0.2, blanket: bool = True) -> None:
        from wd_guard import param_groups

        def factory(net: nn.Module) -> Any:
            params = net.parameters() if blanket else param_groups(net, weight_decay)
            return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)

        super().__init__(mlp(), factory)


def first_element(batch: Any) -> Any:
    """An ``input_fn`` for the CLI test: the inputs of an ``(x, y)`` batch."""
    return batch[0]
