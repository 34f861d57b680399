"""The training stacks people use, with gradient accumulation, and no tract_hub call after ``patch``: the first
optimizer step moves the first layer exactly as the float64 formula on the whole batch says (clipping included).

The model, batch and learning rate are those of ``tests/exact/scenarios.py``. Each stack splits the 8-sample batch
into K micro-batches of the mean loss (Lightning and accelerate divide each micro-batch's loss by K themselves).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import tract_hub
from tests.exact.scenarios import BATCH, LAM, LR, Scenario, global_batch, make_model
from tests.reference import conv_rows, relative_error, tract_reference

CLIP = 0.05  # below the gradient's norm (about 0.1), so clipping changes the step: it must see TrAct's gradient
TOLERANCE = 1e-10


def expected_first_layer_update(clip: float | None) -> torch.Tensor:
    """SGD(momentum) first step: -lr * clip_coef * TrAct gradient, with the clipping norm over every parameter's
    gradient (TrAct's for the first layer's weight, the ordinary one elsewhere)."""
    model = make_model(Scenario())
    x, y = global_batch(torch.float64)
    params = list(model.parameters())
    grads = list(torch.autograd.grad(F.cross_entropy(model(x), y), params))
    rows = conv_rows(x, (3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    grads[0] = tract_reference(grads[0], rows, LAM)
    coef = 1.0
    if clip is not None:
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        coef = min(1.0, clip / (float(norm) + 1e-6))
    return -LR * coef * grads[0]


def patched_model_and_optimizer() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    model = tract_hub.patch(make_model(Scenario()), LAM, target="0")
    return model, torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)


def micro_batches(k: int):
    x, y = global_batch(torch.float64)
    return list(zip(x.chunk(k), y.chunk(k)))


@pytest.mark.parametrize("k", [1, 2, 4])
def test_timm_native_scaler_with_clip_grad(k: int) -> None:
    from timm.utils import NativeScaler

    model, optimizer = patched_model_and_optimizer()
    scaler = NativeScaler(device="cpu")
    before = model[0].weight.detach().clone()
    for index, (x, y) in enumerate(micro_batches(k)):
        loss = F.cross_entropy(model(x), y) / k
        scaler(loss, optimizer, clip_grad=CLIP, parameters=model.parameters(), need_update=index == k - 1)
    update = model[0].weight.detach() - before
    assert relative_error(update, expected_first_layer_update(CLIP)) < TOLERANCE


@pytest.mark.parametrize("k", [1, 2, 4])
def test_lightning_trainer_with_accumulate_grad_batches(k: int, tmp_path) -> None:
    lightning = pytest.importorskip("lightning")

    class Module(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = make_model(Scenario())
            tract_hub.patch(self.net, LAM, target="0")

        def training_step(self, batch, batch_index):
            x, y = batch
            return F.cross_entropy(self.net(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=LR, momentum=0.9)

    module = Module()
    before = module.net[0].weight.detach().clone()
    x, y = global_batch(torch.float64)
    loader = DataLoader(TensorDataset(x, y), batch_size=BATCH // k, shuffle=False)
    trainer = lightning.Trainer(
        accelerator="cpu",
        max_steps=1,
        accumulate_grad_batches=k,
        gradient_clip_val=CLIP,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(module, loader)
    update = module.net[0].weight.detach() - before
    assert relative_error(update, expected_first_layer_update(CLIP)) < TOLERANCE


@pytest.mark.parametrize("k", [1, 2, 4])
def test_accelerate_with_gradient_accumulation_steps(k: int) -> None:
    accelerate = pytest.importorskip("accelerate")
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    accelerator = accelerate.Accelerator(gradient_accumulation_steps=k, cpu=True)
    model, optimizer = patched_model_and_optimizer()
    x, y = global_batch(torch.float64)
    loader = DataLoader(TensorDataset(x, y), batch_size=BATCH // k, shuffle=False)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    before = model[0].weight.detach().clone()
    for inputs, targets in loader:
        with accelerator.accumulate(model):
            accelerator.backward(F.cross_entropy(model(inputs), targets))
            if accelerator.sync_gradients:
                accelerator.clip_grad_norm_(model.parameters(), CLIP)
            optimizer.step()
            optimizer.zero_grad()
    update = model[0].weight.detach() - before
    assert relative_error(update, expected_first_layer_update(CLIP)) < TOLERANCE
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
