"""Installing TrAct on layers, in place, without changing what the model saves; and how exact mode works.

How exact mode works
====================

The promise: after any backward, the first layer's ``.grad`` holds ``T(G, C, N) = G @ inverse(C / N + lam I)``
of every micro-batch accumulated into it since it was last cleared, where ``G`` is the sum of their ordinary
weight gradients, ``C`` the sum of ``x^T x`` over their input rows and ``N`` the number of rows, summed over every
rank whose gradient is averaged in. So clipping, ``GradScaler``, timm's scaler, Lightning, accelerate and DDP see
TrAct's gradient, and nothing needs calling after ``tract_hub.patch``.

The path of one micro-batch
---------------------------

1. **Forward** (:class:`TrActForward`, installed as ``module.forward``): the layer's own forward runs; its one
   ``F.linear``/``F.conv*d`` call gets its weight through the custom operator ``tract_hub::route_weight``
   (:mod:`~tract_hub.patching.ops`), which returns the weight unchanged plus a *token*: an id of this forward.
   Under DDP, FSDP2 or ``process_group=``, a synchronizing forward also computes the call's covariance and sums
   it over the ranks right there (every rank runs the first layer's forward, while its backward may not reach
   the layer on some rank), together with the rank's not yet summed covariance of earlier ``no_sync``
   micro-batches.
2. **Backward**: PyTorch computes ``G`` with its own fused kernels and hands it to ``tract_hub::weight_gradient``,
   which calls :meth:`GradientState.weight_gradient <tract_hub.patching.gradient.GradientState.weight_gradient>`.
3. **Whose ``.grad``?** At the layer's first call in a backward pass, ``.grad`` is compared on the device with
   what it held at the end of the last backward (table below).
4. **Sums**: ``G`` is added to the running ``sum G``; the rows' covariance (computed now, or summed over ranks in
   the forward) and ``N`` are added to theirs, once per forward (:mod:`~tract_hub.patching.forwards`).
5. **Solve**: ``T`` of the new sums (one Cholesky factorization of the ``n x n`` matrix, float64) minus what
   earlier backwards handed out is returned to autograd, whose own accumulation into ``.grad`` then holds
   ``T`` of everything (:class:`~tract_hub.engine.Accumulation`). The solve is linear in ``G``, so DDP's and
   FSDP2's averaging of these increments gives ``T`` of the averaged ``G``.
6. **End of the backward** (after DDP's and FSDP2's own final reductions): what ``.grad`` now holds is noted.

Events and what they do to the sums
-----------------------------------

Each line: the event between two backwards; how it is seen; its effect.

- nothing (gradient accumulation); ``.grad`` equals what the last backward left; continue: ``.grad = T(all)``.
- ``zero_grad()`` (``set_to_none``, the default); ``.grad is None``; start afresh.
- ``zero_grad(set_to_none=False)``, ``grad.zero_()``, ``grad.data.zero_()``, ``grad.data = zeros``,
  ``grad.mul_(0)``; ``.grad`` differs from what was left and is all zeros (decided on the device); start afresh.
- a zero ``G`` (a masked loss), then clipping, ``mul_(1)`` or DDP's averaging; ``.grad`` is all zeros *and*
  equals what was left; continue: that micro-batch's rows count.
- DDP's or FSDP2's averaging in a synchronizing backward; noted after their final reduction; continue.
- averaging by hand with ``process_group=``; differs and is not zeros, as expected (no warning); continue: the
  averaged increments are exact.
- any other change (scaled, clipped per micro-batch, replaced, a plain gradient added, ``unpatch`` then plain
  backwards); differs and is not zeros; kept: ``.grad = change + T(all)``, warned once.
- several backwards through one forward (``retain_graph=True``); the forward's token was counted; its rows count
  once (and again after a clear: they belong to the new accumulation too).
- a backward that raised after this layer's part (an out-of-memory skip); the end of that backward never came, so
  ``.grad`` is compared with what it should hold after it; continue, that micro-batch included.
- a backward that raised inside this layer's part; the sums change only once its work is done; continue, that
  micro-batch left out.
- ``copy.deepcopy``, ``torch.save``/``torch.load``, ``unpatch`` then ``patch``; the sums and what ``.grad`` held
  travel with the layer; continue when the copy's ``.grad`` holds the same values.
- ``tract_hub.patch(lam=...)``; the next solve uses the new ``lam``; it applies to everything accumulated.
- ``tract_hub.patch(exact=...)`` while ``.grad`` is not zero; checked in ``patch``; refused (``TrActStateError``).
- ``torch.autograd.grad``, ``torch.func`` transforms, ``exact=False``; nothing accumulates into ``.grad``; that
  call's own ``T``, the sums untouched.

Limits, stated: a forward backwarded again after 64 newer forwards of the same layer counts its rows again; a
rank whose layer did not run its forward in a synchronizing micro-batch (the layer itself skipped, not only its
gradient) does not take part in that micro-batch's covariance sum, which the other ranks then wait for: patch a
module whose forward every rank runs.

The private PyTorch interfaces behind it
----------------------------------------

All of them are resolved in :mod:`tract_hub._torch_internals`, checked on the releases it lists; exact mode
refuses to start where one is missing.

- ``torch._C._current_graph_task_id``: "the first call of this layer in this ``backward()``";
- ``Variable._execution_engine.queue_callback``: "when this backward is over" (DDP and FSDP2 use it too);
- ``torch._C._will_engine_execute_node``: "this backward accumulates into ``.grad``" (not ``autograd.grad``);
- a dispatch-key guard and ``grad_fn.next_functions``: "the accumulator node of a leaf", from inside an operator;
- ``DistributedDataParallel._get_active_ddp_module``: "a DDP forward runs, and whether it synchronizes";
- FSDP2's ``_module_state_mapping`` and parameter records: "which FSDP2 group holds this weight, and where its
  gradient accumulates";
- ``torch._C._functorch.is_functorch_wrapped_tensor``: "``torch.func`` is transforming this call";
- ``torch.compiler._is_exporting_flag``: "``torch.export`` is tracing" (not ``torch.compile``);
- TorchScript's ``call_prepare_scriptable_func_impl`` frames: "the module ``torch.jit.script`` was called on".

Example:
    >>> import torch, tract_hub
    >>> model = tract_hub.patch(torch.nn.Sequential(torch.nn.Linear(4, 2)), target="0")
    >>> for _ in range(2):  # two micro-batches, then clipping sees TrAct's gradient of both
    ...     model(torch.randn(8, 4)).sum().backward()
    >>> norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
"""

from .api import PatchedLayer, is_patched, iter_patched, patch_layers, patched_layers, unpatch
from .layer import TrActForward

__all__ = ["PatchedLayer", "TrActForward", "is_patched", "iter_patched", "patch_layers", "patched_layers", "unpatch"]
