"""Each runtime rule fires on a model and optimizer with the mistake and stays silent without it."""

from __future__ import annotations

import math

import pytest
import torch
from lightning.pytorch.core.optimizer import LightningOptimizer
from runtime_models import inputs_for
from torch import nn

from wd_guard import WeightDecayWarning, audit, param_groups
from wd_guard.auditing import SHOWN_NAMES, audit_report
from wd_guard.catalogue import get_rule


def codes(findings) -> list:
    return [f.code for f in findings]


def only(findings, code):
    (found,) = [f for f in findings if f.code == code]
    return found


# -- WD101 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [torch.optim.Adam, torch.optim.RMSprop, torch.optim.Adagrad, torch.optim.Adamax, torch.optim.NAdam, torch.optim.RAdam])
def test_wd101_coupled_adaptive(make_mlp, cls):
    net = make_mlp()
    found = only(audit(net, cls(param_groups(net, 0.01))), "WD101")
    assert found.severity == "error" and found.optimizer == 0 and found.group == 0
    assert found.params == ("0.weight", "2.weight")
    assert found.message.startswith(get_rule("WD101").format(optimizer=cls.__name__))


def test_wd101_silent_when_decoupled_or_no_decay(make_mlp):
    net = make_mlp()
    assert audit(net, torch.optim.Adam(param_groups(net, 0.01), decoupled_weight_decay=True)) == []
    assert audit(net, torch.optim.NAdam(param_groups(net, 0.01), decoupled_weight_decay=True)) == []
    assert audit(net, torch.optim.Adam(net.parameters())) == []
    assert audit(net, torch.optim.AdamW(param_groups(net, 0.01))) == []


def test_wd101_reads_the_flag_from_each_group(make_mlp):
    net = make_mlp()
    opt = torch.optim.Adam(param_groups(net, 0.01), decoupled_weight_decay=True)
    opt.param_groups[0]["decoupled_weight_decay"] = False
    assert codes(audit(net, opt)) == ["WD101"]


# -- WD201 to WD203 ------------------------------------------------------------------------------


def test_role_rules_on_bert_with_blanket_adamw(bert):
    findings = audit(bert, torch.optim.AdamW(bert.parameters(), weight_decay=0.05))
    assert codes(findings) == ["WD201", "WD202", "WD203"]
    names = {f.code: f.params for f in findings}
    assert "encoder.layer.0.attention.self.query.bias" in names["WD201"]
    assert "embeddings.LayerNorm.weight" in names["WD202"] and "pooler.dense.bias" not in names["WD202"]
    assert set(names["WD203"]) == {
        "embeddings.word_embeddings.weight",
        "embeddings.position_embeddings.weight",
        "embeddings.token_type_embeddings.weight",
    }


def test_role_rules_silent_with_param_groups(bert, gpt2, make_cnn):
    for net in (bert, gpt2, make_cnn()):
        assert audit(net, torch.optim.AdamW(param_groups(net, 0.05))) == []


def test_every_parameter_is_named_not_a_sample(bert):
    found = only(audit(bert, torch.optim.AdamW(bert.parameters())), "WD201")
    expected = tuple(n for n, _ in bert.named_parameters() if n.endswith(".bias") and "LayerNorm" not in n)
    assert found.params == expected and len(expected) > SHOWN_NAMES
    assert f"+{len(expected) - SHOWN_NAMES} more" in found.message


def test_message_carries_catalogue_text_and_context(make_mlp):
    net = make_mlp()
    opt = torch.optim.SGD([{"params": [net[0].weight]}, {"params": [net[0].bias, net[2].bias], "weight_decay": 0.1}, {"params": [net[2].weight]}], lr=0.1)
    found = only(audit(net, opt), "WD201")
    assert found.message.startswith(get_rule("WD201").format(count=2))
    assert "optimizer 0 (SGD), group 1" in found.message and "weight_decay=0.1" in found.message
    assert "2 parameters: 0.bias, 2.bias" in found.message
    assert (found.optimizer, found.group) == (0, 1)


def test_declared_no_decay_names_are_wd203():
    class Backbone(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pos_embed = nn.Parameter(torch.zeros(1, 4))
            self.proj = nn.Linear(4, 4, bias=False)

        def no_weight_decay(self):
            return ["pos_embed"]

    net = Backbone()
    assert only(audit(net, torch.optim.AdamW(net.parameters())), "WD203").params == ("pos_embed",)
    assert audit(net, torch.optim.AdamW(param_groups(net, 0.01))) == []


def test_tied_weight_reported_once_by_its_first_name(gpt2):
    found = only(audit(gpt2, torch.optim.AdamW(gpt2.parameters())), "WD203")
    assert "transformer.wte.weight" in found.params and "lm_head.weight" not in found.params


def test_frozen_parameters_are_not_reported(make_mlp):
    net = make_mlp()
    net[0].bias.requires_grad_(False)
    found = only(audit(net, torch.optim.AdamW(net.parameters())), "WD201")
    assert found.params == ("2.bias",)


# -- WD204 ---------------------------------------------------------------------------------------


def test_wd204_needs_example_input(make_cnn):
    net = make_cnn()
    opt = torch.optim.SGD(param_groups(net, 5e-4), lr=0.1)
    assert audit(net, opt) == []
    found = only(audit(net, opt, example_input=inputs_for(net)), "WD204")
    assert found.params == ("0.weight",) and found.severity == "info"


def test_wd204_silent_when_the_weight_is_not_decayed(make_cnn, make_mlp):
    net = make_cnn()
    opt = torch.optim.SGD(param_groups(net, 5e-4, no_decay=["0.weight"]), lr=0.1)
    assert audit(net, opt, example_input=inputs_for(net)) == []
    mlp = make_mlp()
    assert audit(mlp, torch.optim.SGD(param_groups(mlp, 5e-4), lr=0.1), example_input=inputs_for(mlp)) == []


# -- WD205 ---------------------------------------------------------------------------------------


def test_wd205_parameters_in_no_group(make_mlp):
    net = make_mlp()
    weights = [p for n, p in net.named_parameters() if n.endswith("weight")]
    found = only(audit(net, torch.optim.AdamW(weights)), "WD205")
    assert found.params == ("0.bias", "2.bias") and found.optimizer is None and found.severity == "error"
    assert found.message.startswith(get_rule("WD205").format(count=2))


def test_wd205_covers_several_optimizers_and_skips_frozen(make_mlp):
    net = make_mlp()
    net[2].requires_grad_(False)
    opts = [torch.optim.SGD([net[0].weight], lr=0.1), torch.optim.SGD([net[0].bias], lr=0.1)]
    assert audit(net, opts) == []
    assert audit(net, []) == [] and audit(net, None) == []


# -- WD301 / WD302 -------------------------------------------------------------------------------


def test_wd301_negligible_over_the_planned_run(make_mlp):
    net = make_mlp()
    opt = torch.optim.AdamW(param_groups(net, 1e-4), lr=1e-4)
    assert audit(net, opt) == []
    found = only(audit(net, opt, total_steps=10_000), "WD301")
    shrink = -math.expm1(-1e-8 * 10_000)
    assert found.message.startswith(get_rule("WD301").format(optimizer="AdamW", shrink=f"{shrink * 100:.2g}%", steps=10_000))
    assert audit(net, torch.optim.AdamW(param_groups(net, 0.05), lr=1e-3), total_steps=10_000) == []
    assert audit(net, opt, total_steps=float("inf")) == []


def test_wd301_uses_the_scheduler_base_lr_not_a_warmup_zero(make_mlp):
    net = make_mlp()
    opt = torch.optim.AdamW(param_groups(net, 0.05), lr=1e-3)
    torch.optim.lr_scheduler.LambdaLR(opt, lambda step: step / 100)  # group lr is 0 at the start
    assert opt.param_groups[0]["lr"] == 0.0
    assert audit(net, opt, total_steps=1000) == []


def test_wd302_excessive_decay(make_mlp):
    net = make_mlp()
    found = only(audit(net, torch.optim.SGD(param_groups(net, 0.5), lr=1.0)), "WD302")
    assert found.message.startswith(get_rule("WD302").format(product="0.5")) and found.severity == "error"
    assert audit(net, torch.optim.SGD(param_groups(net, 5e-4), lr=1.0)) == []


def test_wd302_not_for_coupled_adaptive_decay(make_mlp):
    net = make_mlp()
    assert codes(audit(net, torch.optim.Adam(param_groups(net, 0.5), lr=1.0))) == ["WD101"]


# -- optimizers in every form --------------------------------------------------------------------


def test_lightning_optimizer_and_lists_are_accepted(make_mlp):
    net = make_mlp()
    opt = torch.optim.Adam(net.parameters(), weight_decay=0.1)
    raw = audit(net, opt)
    assert raw and audit(net, LightningOptimizer(opt)) == raw and audit(net, [opt]) == raw


def test_several_optimizers_are_indexed(make_mlp):
    net = make_mlp()
    opts = [torch.optim.AdamW(net[0].parameters()), torch.optim.Adam(net[2].parameters(), weight_decay=0.1)]
    found = audit(net, opts)
    assert [(f.code, f.optimizer) for f in found] == [("WD201", 0), ("WD101", 1), ("WD201", 1)]


def test_unknown_optimizer_is_said_once_and_never_guessed(make_mlp):
    class Mystery(torch.optim.Optimizer):
        def __init__(self, params, lr=1.0, weight_decay=0.5):
            super().__init__(params, {"lr": lr, "weight_decay": weight_decay})

        def step(self, closure=None):
            return None

    net = make_mlp()
    with pytest.warns(WeightDecayWarning, match="Mystery.*unknown") as caught:
        found = audit(net, Mystery(net.parameters()), total_steps=10)
    assert len([w for w in caught if "unknown" in str(w.message)]) == 1
    assert codes(found) == ["WD201"]  # which parameters are decayed is a fact; how is not known


def test_tensors_outside_the_model_are_noted(make_mlp):
    net = make_mlp()
    extra = nn.Parameter(torch.zeros(3))
    report = audit_report(net, torch.optim.AdamW([*net.parameters(), extra]))
    assert [f.code for f in report.findings] == ["WD201"]
    assert report.notes == ["wd-guard: the optimizers hold 1 tensors that are not parameters of the model; they are not checked"]


def test_not_an_optimizer_is_a_type_error(make_mlp):
    with pytest.raises(TypeError, match="expected a torch optimizer"):
        audit(make_mlp(), [object()])


def test_fsdp_flat_parameters_are_said_once_not_guessed(make_mlp):
    from torch.distributed.fsdp._flat_param import FlatParameter

    model = nn.Module()
    model.register_parameter("_flat_param", FlatParameter(torch.zeros(10), requires_grad=True))
    model.head = nn.Linear(2, 2)
    report = audit_report(model, torch.optim.AdamW(model.parameters(), weight_decay=0.1))
    assert [(f.code, f.params) for f in report.findings] == [("WD201", ("head.bias",))]
    (note,) = report.notes
    assert "_flat_param" in note and "cannot be mapped" in note


# -- WD206 ---------------------------------------------------------------------------------------


def test_wd206_a_parameter_decayed_by_two_optimizers(make_mlp):
    net = make_mlp()
    opts = [torch.optim.AdamW(net.parameters(), weight_decay=0.05), torch.optim.SGD(net[2].parameters(), lr=0.1, weight_decay=5e-4)]
    found = only(audit(net, opts), "WD206")
    assert found.params == ("2.weight", "2.bias") and found.severity == "warning"
    assert (found.optimizer, found.group) == (None, None)
    assert found.message.startswith(get_rule("WD206").format())
    assert "optimizer 0 (AdamW) group 0 weight_decay=0.05, optimizer 1 (SGD) group 0 weight_decay=0.0005" in found.message


def test_wd206_silent_when_only_one_optimizer_decays_the_parameter(make_mlp):
    net = make_mlp()
    opts = [torch.optim.AdamW(param_groups(net, 0.05)), torch.optim.SGD(net[2].parameters(), lr=0.1)]
    assert "WD206" not in codes(audit(net, opts))
    assert "WD206" not in codes(audit(net, [torch.optim.AdamW(net[0].parameters()), torch.optim.AdamW(net[2].parameters())]))


# -- optimizer subclasses ------------------------------------------------------------------------


class MyAdam(torch.optim.Adam):
    pass


class MySGD(torch.optim.SGD):
    def __init__(self, params, lr=1.0, weight_decay=0.5):  # new defaults, the same update
        super().__init__(params, lr=lr, weight_decay=weight_decay)


class OwnStep(torch.optim.Adam):
    def step(self, closure=None):
        return super().step(closure)


def test_a_subclass_instantiated_before_the_audit_keeps_its_base_facts(make_mlp):
    from wd_guard import weight_stats

    net = make_mlp()
    adam, sgd = MyAdam(param_groups(net, 0.1), weight_decay=0.1), MySGD(param_groups(net, 0.5))
    assert getattr(type(adam).step, "hooked", False)  # torch wrapped step on the subclass
    assert codes(audit(net, adam)) == ["WD101"]
    assert codes(audit(net, sgd)) == ["WD302"]
    assert "effective_decay/0.weight" in weight_stats(net, sgd)


def test_a_subclass_with_its_own_step_stays_unknown(make_mlp):
    net = make_mlp()
    with pytest.warns(WeightDecayWarning, match="OwnStep.*not in wd-guard's optimizer table"):
        assert codes(audit(net, OwnStep(param_groups(net, 0.1), weight_decay=0.1))) == []
