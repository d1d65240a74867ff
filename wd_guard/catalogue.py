"""The rule catalogue: one entry per code, read by the runtime audit, the linter and the docs.

Code ranges:

- ``WD1xx``: the optimizer applies decay the wrong way (coupled L2 in an adaptive step).
- ``WD2xx``: decay reaches parameters it should not (biases, norms, embeddings, BatchNorm inputs).
- ``WD3xx``: the amount of decay is off (negligible or destructive over the run).
- ``WD4xx``: an explicit L2 penalty in the loss interacts badly with the optimizer.

Each message is a template with named placeholders; callers fill them with ``Rule.format``.
Rules whose ``static_default`` is False exist in the linter but are off unless selected.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Dict, Iterator, Literal, Mapping, Tuple

Severity = Literal["error", "warning", "info"]
Where = Literal["runtime", "static", "both"]

# Where the project lives; pyproject.toml's Project-URLs name the same address (a test checks).
REPOSITORY_URL = "https://github.com/wd-guard/wd-guard"
# Each rule's page (docs/rules/<code>.md, generated from this module by scripts/gen_docs.py).
RULE_URL = REPOSITORY_URL + "/blob/main/docs/rules/{code}.md"

SEVERITIES: Tuple[Severity, ...] = ("error", "warning", "info")

# What WD101's fix, its diff and its page say: decoupling keeps the number, not its meaning.
RETUNE_HINT = "retune weight_decay: decoupled decay removes lr * weight_decay per step"
RETUNE_WEIGHT_DECAY = (
    "Switching to decoupled decay keeps the number but changes what it means: AdamW multiplies\n"
    "each weight by `1 - lr * weight_decay` per step, whatever its gradients, where Adam's L2\n"
    "term was divided by `sqrt(v)`. So retune `weight_decay` rather than keep it. Rule of thumb:\n"
    "AdamW recipes use 0.01 to 0.1 (0.05 for vision transformers, 0.1 for GPT-style language\n"
    "models) with learning rates around 1e-4 to 1e-3; values that suited Adam's L2 or SGD\n"
    "(1e-5 to 5e-4) decay almost nothing under AdamW (WD301), and `lr * weight_decay` of 0.1\n"
    "or more destroys weights within a few steps (WD302)."
)
SECTIONS: Tuple[str, ...] = ("What it does", "Why is this bad?", "Example", "Use instead")


@dataclass(frozen=True)
class Rule:
    """One catalogue entry: what a code means and how it is explained to a user."""

    code: str
    name: str
    severity: Severity
    where: Where
    message: str
    fix: str
    explanation: str
    static_default: bool = True
    deliberate: str = ""  # message for a case the audit judges deliberate, reported at info severity

    @property
    def runtime(self) -> bool:
        """Whether the runtime audit can report this code."""
        return self.where in ("runtime", "both")

    @property
    def static(self) -> bool:
        """Whether the linter can report this code."""
        return self.where in ("static", "both")

    @property
    def placeholders(self) -> Tuple[str, ...]:
        """Names the message template expects, in order of appearance."""
        fields = (name for _, name, _, _ in string.Formatter().parse(self.message))
        return tuple(dict.fromkeys(name for name in fields if name))

    def format(self, **values: object) -> str:
        """The message with its placeholders filled in."""
        return self.message.format(**values)

    def sections(self) -> Dict[str, str]:
        """The explanation split into its ``## Heading`` sections."""
        parts: Dict[str, str] = {}
        heading = None
        for line in self.explanation.strip("\n").splitlines():
            if line.startswith("## "):
                heading = line[3:].strip()
                parts[heading] = ""
            elif heading is not None:
                parts[heading] += line + "\n"
        return {key: value.strip("\n") for key, value in parts.items()}

    def explain(self) -> str:
        """The full text shown by ``wd-lint --explain`` and by the rule's doc page."""
        header = f"# {self.code} {self.name}\n\nDefault severity: {self.severity}. "
        header += f"Checked {_WHERE_TEXT[self.where]}.\n\n{self.format_summary()}\n\n"
        return header + self.explanation.strip("\n") + f"\n\nFix: {self.fix}\n"

    @property
    def url(self) -> str:
        """The address of the rule's page."""
        return RULE_URL.format(code=self.code)

    def format_summary(self) -> str:
        """The message template with placeholders shown as ``<name>``."""
        return self.message.format(**{name: f"<{name}>" for name in self.placeholders})


_WHERE_TEXT: Mapping[str, str] = {
    "runtime": "at run time (audit, WeightDecayGuard)",
    "static": "by the linter (wd-lint)",
    "both": "at run time and by the linter",
}


RULES: Tuple[Rule, ...] = (
    Rule(
        code="WD101",
        name="coupled-decay-adaptive",
        severity="error",
        where="both",
        message="{optimizer} applies weight_decay as coupled L2, which its adaptive step distorts",
        fix="Use AdamW, or pass decoupled_weight_decay=True where the optimizer has it; then retune weight_decay",
        explanation="""
## What it does
Flags an adaptive optimizer (Adam, Adamax, RMSprop, Adagrad, Adadelta, NAdam, RAdam) that is
given a non-zero `weight_decay` without `decoupled_weight_decay=True`, and the third-party
optimizers that add the decay to the gradient the same way: bitsandbytes' RMSprop and
Adagrad, torch-optimizer's AdaBound, Yogi or AdaBelief without `weight_decouple=True`, apex's
and DeepSpeed's `FusedAdam(adam_w_mode=False)`, among others.

## Why is this bad?
These optimizers add `weight_decay * theta` to the gradient and then divide the update by
`sqrt(v)`, the running size of past gradients. Weights with a large gradient history are
barely regularised and rarely-updated ones are crushed, so the decay no longer acts as the
uniform shrinkage that the hyper-parameter promises. Decoupled decay (AdamW) multiplies the
weights by `1 - lr * weight_decay` outside the adaptive step and is what the value usually
means in papers and recipes.

## Example
```python
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-2)
```

## Use instead
```python
# Retuned: AdamW removes lr * weight_decay of each weight per step.
optimizer = torch.optim.AdamW(wd_guard.param_groups(model, weight_decay=0.05), lr=1e-3)
# or, for NAdam and RAdam:
groups = wd_guard.param_groups(model, weight_decay=0.05)
optimizer = torch.optim.NAdam(groups, lr=1e-3, decoupled_weight_decay=True)
```

""" + RETUNE_WEIGHT_DECAY + """
""",
    ),
    Rule(
        code="WD201",
        name="decayed-bias",
        severity="warning",
        where="runtime",
        message="bias parameters are decayed",
        fix="Put biases in a parameter group with weight_decay=0 (wd_guard.param_groups does it)",
        explanation="""
## What it does
Flags bias parameters that sit in an optimizer group with non-zero weight decay.

## Why is this bad?
A bias shifts an activation; it does not scale with the input and does not cause
over-fitting the way a weight matrix can. Pulling it towards zero only fights the layer's
offset and costs accuracy, which is why reference training recipes exclude biases from decay.

## Example
```python
optimizer = torch.optim.AdamW(model.parameters(), weight_decay=0.05)
```

## Use instead
```python
optimizer = torch.optim.AdamW(wd_guard.param_groups(model, weight_decay=0.05))
```
""",
    ),
    Rule(
        code="WD202",
        name="decayed-norm",
        severity="warning",
        where="runtime",
        message="normalisation parameters or other one-dimensional gains are decayed",
        fix="Put normalisation scales and shifts and other 1-D gains in a parameter group with weight_decay=0",
        explanation="""
## What it does
Flags the scale and shift of normalisation layers (BatchNorm, LayerNorm, GroupNorm,
InstanceNorm, RMSNorm and any class whose name contains `Norm`, such as `RMSNormGated` or
EvoNorm) and every other 0-d or 1-D parameter that is not a bias (LayerScale `gamma`, CLIP's
`logit_scale`, Mamba's `D`) when they sit in a group with non-zero decay.

## Why is this bad?
A normalisation scale or a gain sets the size of an activation. Decaying it drags every
feature towards zero and fights the very statistics the layer exists to restore. The usual
recipes (BERT, ViT, ConvNeXt) exclude normalisation parameters from decay, and timm, nanoGPT
and Megatron exclude every 1-D parameter.

## Example
```python
optimizer = torch.optim.AdamW(model.parameters(), weight_decay=0.05)  # LayerNorm decayed
```

## Use instead
```python
optimizer = torch.optim.AdamW(wd_guard.param_groups(model, weight_decay=0.05))
```
""",
    ),
    Rule(
        code="WD203",
        name="decayed-embedding",
        severity="warning",
        where="runtime",
        message="embedding tables, tokens, position tables or names the model declares no-decay are decayed",
        deliberate="embedding tables or tokens are decayed while this optimizer keeps a no-decay group, as the transformers and nanoGPT recipes choose to",
        fix="Exclude embedding tables, tokens, position tables and the names the model declares no-decay from decay",
        explanation="""
## What it does
Flags embedding tables (`nn.Embedding`, `nn.EmbeddingBag`), class tokens and position tables
held as bare parameters (`cls_token`, `pos_embed`, `relative_position_bias_table`), and the
parameters a model declares no-decay, when they are decayed. Declarations are read from
`no_weight_decay()` (names and wildcard patterns such as `'pos_embed.*'`, as timm matches
them) and `no_weight_decay_keywords()` on the model or any submodule, and from a parameter's
`_no_weight_decay = True`; the message says who declared each name. When the optimizer
already has a no-decay group and only embedding tables and tokens are decayed (the
transformers Trainer and nanoGPT recipes), the choice looks deliberate and the finding is
reported at info severity.

## Why is this bad?
Each row of an embedding table is updated only when its token appears, but decay shrinks
every row at every step: rare tokens are pulled towards zero between their updates. Models
that declare no-decay names (position embeddings, class tokens) do so because their authors
measured the damage.

## Example
```python
optimizer = torch.optim.AdamW(model.parameters(), weight_decay=0.1)  # token table decayed
```

## Use instead
```python
optimizer = torch.optim.AdamW(wd_guard.param_groups(model, weight_decay=0.1))
```
""",
    ),
    Rule(
        code="WD204",
        name="decayed-scale-invariant",
        severity="info",
        where="both",
        static_default=False,
        message="decayed weights feed straight into BatchNorm, where decay only raises the effective learning rate",
        fix="Tune weight decay and learning rate together for these layers, or exclude them from decay",
        explanation="""
## What it does
Reports weights of Linear and Conv layers whose output is consumed directly by a BatchNorm
layer, when they are decayed. At run time the data flow of one forward pass decides; the
linter (opt-in) looks for a layer followed by a BatchNorm inside `nn.Sequential(...)`.

## Why is this bad?
BatchNorm divides by the batch's standard deviation, so the function does not change when the
weight before it is scaled. Decay then cannot regularise that weight; it only shrinks its
norm, which raises the effective learning rate of the layer. That is not an error, but weight
decay and learning rate must be tuned together there.

## Example
```python
block = nn.Sequential(nn.Conv2d(64, 64, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU())
optimizer = torch.optim.SGD(block.parameters(), lr=0.1, weight_decay=5e-4)
```

## Use instead
```python
# Keep the decay but tune it with the learning rate, or exclude these weights:
groups = wd_guard.param_groups(block, weight_decay=5e-4, no_decay=["0.weight"])
optimizer = torch.optim.SGD(groups, lr=0.1)
```
""",
    ),
    Rule(
        code="WD205",
        name="untrained-parameter",
        severity="error",
        where="runtime",
        message="trainable parameters are in no optimizer group and will never be updated",
        fix="Make every trainable parameter appear in exactly one group, or set requires_grad=False",
        explanation="""
## What it does
Flags parameters with `requires_grad=True` that no optimizer holds, usually left out by a
hand-written decay / no-decay split.

## Why is this bad?
Such a parameter receives gradients but is never updated: it stays at its initial value for
the whole run while the model silently trains without it.

## Example
```python
decay = [p for n, p in model.named_parameters() if n.endswith("weight") and p.ndim > 1]
optimizer = torch.optim.AdamW(decay, weight_decay=0.05)  # biases and norms forgotten
```

## Use instead
```python
optimizer = torch.optim.AdamW(wd_guard.param_groups(model, weight_decay=0.05))
```
""",
    ),
    Rule(
        code="WD206",
        name="double-decay",
        severity="warning",
        where="runtime",
        message="parameters held by several optimizers are decayed by each of them",
        fix="Give each parameter to one optimizer, or set its weight_decay to 0 in all but one",
        explanation="""
## What it does
Flags parameters that sit in a group with non-zero weight decay in two or more optimizers.

## Why is this bad?
Every optimizer's step applies its own decay (and its own update), so such a parameter
shrinks once per optimizer and step: twice the decay anyone chose, or more. It is usually a
module handed to a second optimizer while still inside the `model.parameters()` of the
first.

## Example
```python
backbone_opt = torch.optim.AdamW(model.parameters(), weight_decay=0.05)  # the head too
head_opt = torch.optim.SGD(model[3].parameters(), lr=0.1, weight_decay=5e-4)
```

## Use instead
```python
backbone_opt = torch.optim.AdamW(wd_guard.param_groups(model[:3], weight_decay=0.05))
head_opt = torch.optim.SGD(wd_guard.param_groups(model[3], weight_decay=5e-4), lr=0.1)
```
""",
    ),
    Rule(
        code="WD210",
        name="blanket-decay",
        severity="warning",
        where="static",
        message="{call} hands every parameter to {optimizer}, whose weight_decay is {weight_decay}: biases, norms and embeddings are decayed too",
        fix="Pass wd_guard.param_groups(model, weight_decay=...) instead of model.parameters()",
        explanation="""
## What it does
Flags `model.parameters()` (and its `requires_grad` filters) handed whole to an optimizer
whose weight decay is non-zero, including AdamW's implicit default of 0.01.

## Why is this bad?
One group means one decay for every parameter: biases, normalisation scales and embedding
tables are decayed together with the weight matrices. The runtime checks WD201 to WD203 say
which parameters are hit; this rule catches the pattern before the run.

## Example
```python
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)  # weight_decay=0.01 by default
```

## Use instead
```python
optimizer = torch.optim.AdamW(wd_guard.param_groups(model, weight_decay=0.01), lr=3e-4)
```
""",
    ),
    Rule(
        code="WD301",
        name="negligible-decay",
        severity="info",
        where="runtime",
        message="{optimizer} decays so little that weights shrink by only {shrink} over the planned {steps} steps",
        fix="Raise weight_decay (or drop it) so that weight_decay * sum(lr) over the run is meaningful",
        explanation="""
## What it does
Estimates how much decay alone shrinks a weight over the whole planned run,
`1 - exp(-weight_decay * sum_t lr_t)`, and reports groups where that is below 1%.

## Why is this bad?
Decay acts per step through `lr * weight_decay`. A value copied from a recipe with another
learning rate or run length (`weight_decay=1e-4` with `lr=1e-4` on AdamW, say) can end up
doing nothing at all while the configuration suggests regularisation.

## Example
```python
optimizer = torch.optim.AdamW(groups, lr=1e-4, weight_decay=1e-4)  # 10k steps: 0.01% shrink
```

## Use instead
```python
optimizer = torch.optim.AdamW(groups, lr=1e-4, weight_decay=0.05)
```
""",
    ),
    Rule(
        code="WD302",
        name="excessive-decay",
        severity="error",
        where="both",
        message="lr * weight_decay (momentum included) = {product} per step removes at least 10% of every decayed weight per step",
        fix="Lower weight_decay or lr so that lr * weight_decay is far below 0.1",
        explanation="""
## What it does
Flags a group whose `lr * weight_decay` is 0.1 or more.

## Why is this bad?
Each step multiplies decayed weights by `1 - lr * weight_decay`. At 0.1 or more, the weights
lose a tenth of their size per step and are destroyed within a few dozen steps, whatever the
gradient does. This is usually a PyTorch `weight_decay` confused with a textbook `lambda` of
another convention, or a decay meant for AdamW given to SGD with a large learning rate.

## Example
```python
optimizer = torch.optim.SGD(model.parameters(), lr=1.0, weight_decay=0.5)
```

## Use instead
```python
optimizer = torch.optim.SGD(wd_guard.param_groups(model, weight_decay=5e-4), lr=1.0)
```
""",
    ),
    Rule(
        code="WD401",
        name="double-l2",
        severity="warning",
        where="static",
        message="explicit L2 penalty added to the loss while an optimizer also applies weight_decay",
        fix="Keep one regulariser: drop the penalty or set the optimizer's weight_decay to 0",
        explanation="""
## What it does
Flags an explicit L2 penalty added to a loss (`sum(p.pow(2).sum() for p in model.parameters())`,
`torch.norm(w) ** 2`, ...) in a file that also builds an optimizer with non-zero decay.

## Why is this bad?
The weights are then regularised twice, by two knobs that interact: tuning one changes what
the other means, and the total strength is rarely what anyone chose.

## Example
```python
loss = criterion(out, y) + 1e-4 * sum(p.pow(2).sum() for p in model.parameters())
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=5e-4)
```

## Use instead
```python
loss = criterion(out, y)
optimizer = torch.optim.SGD(wd_guard.param_groups(model, weight_decay=5e-4), lr=0.1)
```
""",
    ),
    Rule(
        code="WD402",
        name="l2-penalty-adaptive",
        severity="warning",
        where="static",
        message="explicit L2 penalty added to the loss of an adaptive optimizer, which distorts it like coupled decay",
        fix="Drop the penalty and use AdamW's decoupled weight_decay instead",
        explanation="""
## What it does
Flags an explicit L2 penalty added to a loss in a file that builds an adaptive optimizer
(Adam, AdamW, RMSprop, Adagrad, ...).

## Why is this bad?
The penalty's gradient goes through the same `1/sqrt(v)` scaling as the data gradient, so it
has the distortion of coupled weight decay (WD101): large-gradient weights escape it.

## Example
```python
loss = criterion(out, y) + 1e-4 * sum((p ** 2).sum() for p in model.parameters())
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
```

## Use instead
```python
loss = criterion(out, y)
optimizer = torch.optim.AdamW(wd_guard.param_groups(model, weight_decay=0.05), lr=1e-3)
```
""",
    ),
)

RULES_BY_CODE: Mapping[str, Rule] = {rule.code: rule for rule in RULES}


def get_rule(code: str) -> Rule:
    """The catalogue entry for ``code``; raises ``KeyError`` naming the known codes."""
    try:
        return RULES_BY_CODE[code.upper()]
    except KeyError:
        known = ", ".join(RULES_BY_CODE)
        raise KeyError(f"unknown rule code {code!r}; known codes: {known}") from None


def iter_rules(where: Where = "both") -> Iterator[Rule]:
    """Rules that the runtime audit (``'runtime'``) or the linter (``'static'``) can report."""
    for rule in RULES:
        if where == "both" or rule.where in (where, "both"):
            yield rule
