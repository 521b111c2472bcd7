"""The Trainer: one training loop for every notebook and the command line.

What it does for you, and why:

* **Data on the device.** Batches come from :class:`d2lcnn.data.FashionMNIST`, which lives on
  the training device: no DataLoader, no copies per step.
* **No waiting for the GPU.** Loss and accuracy are summed in device tensors; the host reads
  them (a synchronisation) at most twice a second for the progress bar, and once per epoch.
* **The compute path for the device and network** (:func:`compute_path`; each fit says its
  choice in one line). On CUDA: bfloat16 autocast on GPUs that have it natively (compute
  capability 8.0 or newer), float16 with a gradient scaler otherwise (a T4; steps the scaler skips
  are counted in the history, and its state is kept in checkpoints), and channels-last. On a CPU:
  channels-last, float32. bfloat16 autocast on a CPU with bfloat16 instructions (AVX512-BF16 or
  AMX) only when asked (``amp=True``): its training steps ran 1.1-2.9 times as fast as float32's
  on the development machine's 2-core CPU (2.1 times in the median over the fifteen ``fashion``
  networks; ``python -m d2lcnn speed``, ``measurements/cpu-path.json``), but that it trains to
  the same accuracy is not shown yet (one short ResNet-18 run lost 3.8 points). ``torch.compile``
  on request. Without mixed precision no autocast context is entered at all (before torch 2.5,
  even a disabled one raises on Apple's MPS).
* **Honest in a notebook.** A progress bar and a live plot of the curves; in a terminal, one
  line per epoch on stderr (stdout stays free for results). The stop button (or Ctrl-C) stops after the current step and keeps the model
  and the history; ``fit()`` then continues exactly where it stopped.
* **Checkpoints** (:mod:`d2lcnn.checkpoint`) hold model, optimizer, history, recipe and data
  settings; they are written atomically and loaded all or nothing: one of another architecture,
  or one that does not fit, is refused before anything changes.
* **Nothing fails silently.** A bad setting is refused when the Recipe or the Trainer is made
  (:mod:`d2lcnn.guards`), before any data loads; so is an image size the model cannot take. A
  loss that becomes NaN/inf stops the fit (the weights go back to the last good epoch); a run
  stuck at chance level, a long run on a CPU, several threads on a CPU that other programs keep
  busy, and a Trainer about to re-initialise a trained network each get a warning that says what
  to do.
* **Quick mode** (``D2LCNN_QUICK=1``) caps epochs, steps, batch size and evaluation so that CI
  runs every notebook in seconds on a CPU without a change to the notebook.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import os
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import checkpoint
from . import models as registry
from .checkpoint import CheckpointError
from .data import CLASSES, FashionMNIST
from .guards import ArgumentError, check_count, check_model_fits, check_recipe
from .runtime import default_device, native_bf16, quick_mode

QUICK = {"epochs": 1, "steps": 5, "batch_size": 32, "eval_examples": 256}
"""What quick mode allows at most: epochs per fit, steps per epoch, batch size, test examples."""

CHANCE = 0.2
"""Test accuracy below this after two epochs or more counts as stuck at chance (10 classes: 0.1)."""

LONG_RUN_S = 300
"""A fit expected to take longer than this (seconds) gets a warning that says how to shorten it."""

ESTIMATE_AFTER_S = 10
"""How long a fit runs before its duration is estimated (once per fit)."""

BUSY_LOAD_PER_CORE = 1.5
"""A CPU fit warns about thread contention when the load average exceeds this per core (plus one)."""

DATA_SETTINGS = ("batch_size", "resize", "augment", "normalize", "seed")
"""The data pipeline's settings a checkpoint records (they decide what the model saw)."""

# torch.OutOfMemoryError exists from torch 2.5; before that only the CUDA one.
OutOfMemoryError = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


@dataclass
class Recipe:
    """How to train: plain data, so it fits in a ``weights_only`` checkpoint.

    The defaults are the *modern* recipe; :meth:`book` gives the book's, :meth:`modern` the
    modern one with a model's own image size and peak learning rate.
    """

    name: str = "modern"
    batch_size: int = 128
    lr: float = 0.02              # the peak learning rate
    epochs: int = 10
    resize: int = 28
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4    # applied to weights, not to biases and norm layers
    schedule: str = "onecycle"    # "constant", or "onecycle": linear warm-up, then cosine to 0
    warmup: float = 0.15          # fraction of the steps spent warming up (onecycle)
    label_smoothing: float = 0.1
    augment: bool = True          # random 2-pixel shifts and horizontal flips
    normalize: bool = True        # subtract the training mean, divide by the std
    init: str = "kaiming"         # "xavier" (the book's), "kaiming" (for ReLU nets) or "none"
    clip_grad_norm: float = 5.0   # 0 turns clipping off

    def __post_init__(self):
        check_recipe(self)  # a bad value is refused here, with the fix, not at the first step

    @classmethod
    def book(cls, name: str, **changes) -> "Recipe":
        """The book's recipe for a registered model: plain SGD, constant rate, Xavier init.

        Exactly what d2l's ``train_ch6`` does: no momentum, no weight decay, no schedule, no
        augmentation or normalisation, Xavier-uniform weights for Conv2d and Linear layers.
        """
        book = registry.spec(name, "fashion").book
        if book is None:
            raise KeyError(f"the book has no recipe for {name!r}")
        recipe = cls(name="book", batch_size=book["batch_size"], lr=book["lr"], epochs=book["epochs"],
                     resize=book["resize"], momentum=0.0, nesterov=False, weight_decay=0.0,
                     schedule="constant", warmup=0.0, label_smoothing=0.0, augment=False,
                     normalize=False, init="xavier", clip_grad_norm=0.0)
        return dataclasses.replace(recipe, **changes)

    @classmethod
    def modern(cls, name: str, **changes) -> "Recipe":
        """The modern recipe at a registered model's image size, with the model's own changes.

        A model registers what it needs changed (``register(..., modern={...})``): LeNet, whose
        sigmoids want Xavier's initialisation rather than Kaiming's, says so there.
        """
        spec = registry.spec(name, "fashion")
        resize = spec.book["resize"] if spec.book else spec.input_shape[-1]
        return dataclasses.replace(cls(resize=resize), **{**spec.modern, **changes})


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite; the message says in which epoch and what to try."""


class TrainingWarning(UserWarning):
    """Something about a run the student should know: stuck at chance, a long run, lost weights."""


def warn(message: str) -> None:
    """Show ``message`` as a TrainingWarning every time (Python shows a repeated warning once)."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", TrainingWarning)
        warnings.warn(message, TrainingWarning, stacklevel=3)


class TrainingOutOfMemory(RuntimeError):
    """The GPU ran out of memory; the message says with which batch and what to try."""


def init_weights(model: nn.Module, how: str) -> None:
    """Initialise Conv2d and Linear weights: "xavier" as the book, "kaiming" for ReLU networks.

    "kaiming" is what lets deep ReLU networks without normalisation (AlexNet, VGG, NiN) start
    learning at once; with the book's Xavier weights and a large constant learning rate they
    sometimes never leave chance level.

    Every layer is first reset to PyTorch's own initialisation, so that under the same seed the
    same network comes out every time (biases included); "none" leaves the weights as they are.
    """
    if how not in ("xavier", "kaiming", "none"):
        raise ValueError(f"init must be 'xavier', 'kaiming' or 'none', got {how!r}")
    if how == "none":
        return
    for m in model.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    for m in model.modules():
        if not isinstance(m, (nn.Conv2d, nn.Linear)):
            continue
        if how == "xavier":  # as d2l's train_ch6: weights only, biases keep PyTorch's default
            nn.init.xavier_uniform_(m.weight)
            continue
        if isinstance(m, nn.Conv2d):  # keeps the activations' scale through ReLU layers
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        else:  # small classifier weights, as torchvision initialises VGG and AlexNet
            nn.init.normal_(m.weight, 0, 0.01)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


SKIPPED_WARN = 0.05
"""float16: warn when the scaler skipped more than this fraction of an epoch's steps (and over 10)."""


def gpu_capability(device: torch.device) -> tuple[int, int] | None:
    """The CUDA compute capability of ``device`` (a T4: (7, 5), an H100: (9, 0)); None off CUDA."""
    return torch.cuda.get_device_capability(device) if device.type == "cuda" else None


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast precision of ``device``, or None where float32 is fastest.

    CUDA: bfloat16 on GPUs that have it natively (compute capability >= 8.0), else float16;
    ``torch.cuda.is_bf16_supported()`` says True on a T4 too, where bf16 is emulated and slow.
    float16 needs a gradient scaler (see ``Trainer._scaled_update``). CPU: bfloat16 where the CPU
    has bfloat16 instructions (:func:`d2lcnn.runtime.native_bf16`), never where it would be
    emulated. Elsewhere None.
    """
    capability = gpu_capability(device)
    if capability is not None:
        return torch.bfloat16 if capability[0] >= 8 else torch.float16
    if device.type == "cpu":
        return torch.bfloat16 if native_bf16() else None
    return None


@dataclass(frozen=True)
class ComputePath:
    """How a Trainer runs its network: precision, memory format, compilation, CPU threads.

    :func:`compute_path` chooses it; ``str()`` is the one line a fit says about it.
    """

    device: torch.device
    amp_dtype: torch.dtype | None
    channels_last: bool
    compile: bool
    why_float32: str = ""

    def __str__(self) -> str:
        threads = torch.get_num_threads()
        where = (f"{self.device}, {threads} thread{'s' if threads > 1 else ''}" if self.device.type == "cpu"
                 else str(self.device))
        precision = (f"{str(self.amp_dtype).removeprefix('torch.')} autocast" if self.amp_dtype
                     else f"float32{f' ({self.why_float32})' if self.why_float32 else ''}")
        return (f"compute path on {where}: {precision}, {'channels-last' if self.channels_last else 'contiguous'}, "
                f"{'torch.compile' if self.compile else 'eager'}")


def compute_path(device: torch.device, name: str | None = None, amp: bool | None = None,
                 channels_last: bool | None = None, compile: bool = False) -> ComputePath:
    """The compute path for network ``name`` ("resnext/fashion") on ``device``.

    Each argument that is not None is obeyed. Otherwise: on CUDA, autocast (:func:`amp_dtype`) and
    channels-last. On the CPU, channels-last in float32; bfloat16 autocast only with ``amp=True``
    (where the CPU has bfloat16 instructions): ``python -m d2lcnn speed`` measured its steps
    faster for most ``fashion`` networks (``measurements/cpu-path.json``), but not yet that it
    trains to the same accuracy, so it is not the default. A network for which a part measured
    slower says so in its registration and gets it off: ``cpu={"channels_last": False}`` for the
    tiny BN-LeNet. Elsewhere (Apple's MPS) float32, contiguous. ``torch.compile`` only when asked
    (``compile=True``): its compile time has to be won back within the fit, and we have not
    measured that it is in a lesson's CPU fit.
    """
    gpu = gpu_capability(device) is not None
    cpu = device.type == "cpu" and not gpu
    tuned = {}
    if cpu and name and "/" in name:
        with contextlib.suppress(KeyError):
            tuned = registry.spec(*name.split("/", 1)).cpu
    use_amp = gpu if amp is None else amp
    dtype = amp_dtype(device) if use_amp else None
    why = ""
    if amp is False:
        why = "amp=False"
    elif cpu and not native_bf16():
        why = "this CPU has no bfloat16 instructions"
    elif cpu and not use_amp:
        why = "bfloat16 only with amp=True on a CPU: same accuracy not yet shown"
    if channels_last is None:
        channels_last = tuned.get("channels_last", gpu or cpu)
    return ComputePath(device, dtype, channels_last, compile, why if dtype is None else "")


def in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, Colab), where widgets can be shown."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and any(c.__name__ == "ZMQInteractiveShell" for c in type(shell).__mro__)


def _check_arguments(model, recipe, seed) -> None:
    """The Trainer's arguments of the wrong kind, refused in words before anything is made."""
    if not isinstance(model, nn.Module):
        raise ArgumentError(f"model must be a network (a torch.nn.Module), got {type(model).__name__} {model!r:.60}. "
                            "Build one first, e.g. Trainer(models.build('lenet')).")
    if recipe is not None and not isinstance(recipe, Recipe):
        fix = (f"Recipe(**{recipe!r:.80}) or Recipe.modern('lenet', **{recipe!r:.80})" if isinstance(recipe, dict)
               else "Recipe.modern('lenet') or Recipe.book('lenet')")
        raise ArgumentError(f"recipe must be a Recipe, got a {type(recipe).__name__}: write recipe={fix}; "
                            "a Recipe checks every setting.")
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise ArgumentError(f"seed must be a whole number of at least 0, got {seed!r}. Any one will do, e.g. seed=0; "
                            "the same seed gives the same network and the same run.")


class Trainer:
    """Train and evaluate a network on Fashion-MNIST.

    >>> trainer = Trainer(models.build("lenet"), recipe=Recipe.modern("lenet"))   # doctest: +SKIP
    >>> trainer.fit()            # 10 epochs, progress bar and live curves in a notebook
    >>> trainer.history[-1]      # {'epoch': 10, 'train_loss': ..., 'test_acc': ..., ...}

    Args:
        model: the network; it is initialised as the recipe says (``init``) and moved to ``device``.
        data: a :class:`FashionMNIST`; built from the recipe (batch size, resize, augment,
            normalize) when not given.
        recipe: a :class:`Recipe`; the modern defaults when not given.
        device: where to train; CUDA, else MPS, else the CPU.
        callbacks: objects with optional ``on_fit_start(trainer)`` and
            ``on_epoch_end(trainer, record)`` methods (e.g. ``viz.Replay``).
        compile: run the model through ``torch.compile``.
        amp: mixed precision; by default on CUDA (see :func:`amp_dtype`; float16 brings a
            ``torch.amp.GradScaler``, ``self.scaler``, which is None otherwise); on a CPU with
            bfloat16 instructions only when ``amp=True`` (see :func:`compute_path`, which
            chooses these three; ``trainer.path`` says what it chose).
        channels_last: channels-last memory format; by default on CUDA and the CPU.
        seed: seeds the weights' initialisation and the data order: the same seed gives the
            same network and the same run.
        name: the architecture's name recorded in checkpoints (default: the registry's tag).

    Everything is checked before the data loads: the device exists, and an image of the data's
    size fits the model (otherwise InputMismatchError names the layer where it breaks).
    """

    def __init__(self, model: nn.Module, data: FashionMNIST | None = None, recipe: Recipe | None = None,
                 device: str | torch.device | None = None, callbacks=(), compile: bool = False,
                 amp: bool | None = None, channels_last: bool | None = None, seed: int = 0,
                 name: str | None = None):
        _check_arguments(model, recipe, seed)
        self.recipe = recipe or Recipe()
        self.device = default_device(device if device is not None else (data.device if data else None))
        self.quick = quick_mode()
        self.seed = seed
        self.name = name or getattr(model, "d2lcnn_name", type(model).__name__)
        resize = data.resize if data is not None else self.recipe.resize
        # Given data is asked for one real image: a dataset of 3 channels (or another size) shows here.
        shape = tuple(data.sample(1)[0].shape) if data is not None and hasattr(data, "sample") else (1, 1, resize, resize)
        check_model_fits(model, shape, len(CLASSES), what=f"Fashion-MNIST at resize={resize}")
        trained = getattr(model, "d2lcnn_trained_epochs", None)
        if trained is not None and self.recipe.init != "none":
            warn(f"this network was trained already ({trained} finished epoch{'s' if trained != 1 else ''}); a new "
                 f"Trainer re-initialises its weights (init={self.recipe.init!r}), so that training is gone. "
                 "To train it further, call fit() again on the Trainer you had; to start a new Trainer "
                 "from its weights, give it a recipe with init='none'.")
        torch.manual_seed(seed)
        init_weights(model, self.recipe.init)
        self._own_data = data is None
        self.data = data if data is not None else self._make_data(
            {**{k: getattr(self.recipe, k) for k in DATA_SETTINGS if k != "seed"}, "seed": seed})
        cuda = self.device.type == "cuda"
        self.path = compute_path(self.device, self.name, amp, channels_last, compile)
        self.channels_last, self.amp_dtype = self.path.channels_last, self.path.amp_dtype
        if cuda:
            torch.backends.cudnn.benchmark = True
        self.model = model.to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.rank, self.world_size = 0, 1
        self.forward_model: nn.Module = self.model
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            self.rank, self.world_size = torch.distributed.get_rank(), torch.distributed.get_world_size()
            self.forward_model = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if cuda else None)
        if self.path.compile:
            self.forward_model = torch.compile(self.forward_model)
        # float16 (a T4) needs a gradient scaler; its optimizer is then fused (see _scaled_update).
        self.scaler = torch.amp.GradScaler(self.device.type) if self.amp_dtype == torch.float16 else None
        self._skipped = torch.zeros((), device=self.device, dtype=torch.long)   # steps the scaler skipped
        self.optimizer = self._make_optimizer()
        self.callbacks = list(callbacks)
        self.history: list[dict] = []
        self.epoch = 0              # finished epochs
        self._plan: dict | None = None   # the current fit: epochs to reach, steps, position
        self._stop = False
        self._in_step = False       # a second Ctrl-C waits for the step to be applied and counted
        self._raise_after_step = False

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str | torch.device | None = None,
                        **kwargs) -> "Trainer":
        """A Trainer for a checkpoint of a registered network: the same architecture, recipe and
        data settings, with the weights, optimizer, history and position restored.

        ``fit()`` then finishes an interrupted run; ``fit(n)`` trains ``n`` more epochs.
        """
        state = checkpoint.read(path, map_location="cpu")
        name, _, config = state["arch"].partition("/")
        try:
            spec = registry.spec(name, config or "fashion")
        except KeyError:
            raise CheckpointError(f"{path} holds {state['arch']!r}, which is not a registered network; "
                                  "build it yourself and use Trainer(model, ...).load(path).") from None
        recipe = cls._recipe_of(path, state)
        return cls(spec.build(), recipe=dataclasses.replace(recipe, init="none"), device=device,
                   seed=state["data"].get("seed", 0), **kwargs).load(path)

    # ------------------------------------------------------------------------------------------
    # Set-up
    # ------------------------------------------------------------------------------------------

    def _make_data(self, settings: dict) -> FashionMNIST:
        """The data as ``settings`` (the keys of DATA_SETTINGS) say, on the training device."""
        return FashionMNIST(device=self.device, **settings)

    def _make_optimizer(self) -> torch.optim.Optimizer:
        r = self.recipe
        decay = [p for p in self.model.parameters() if p.requires_grad and p.dim() > 1]
        no_decay = [p for p in self.model.parameters() if p.requires_grad and p.dim() <= 1]
        groups = [{"params": decay, "weight_decay": r.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        settings = {"lr": r.lr, "momentum": r.momentum, "nesterov": r.nesterov and r.momentum > 0}
        try:
            optimizer = torch.optim.SGD(groups, **settings, **({"fused": True} if self.scaler is not None else {}))
        except TypeError:   # a torch without fused SGD: the scaler then reads its flag at every step
            optimizer = torch.optim.SGD(groups, **settings)
        self._zero_momentum(optimizer)
        # Counts the updates really applied, so that an interrupt landing between the update and
        # the loop's own count cannot make a resumed fit apply that update twice.
        self._updates = 0
        optimizer.register_step_post_hook(self._count_update)
        return optimizer

    def _count_update(self, optimizer, args, kwargs) -> None:
        self._updates += 1

    def _zero_momentum(self, optimizer: torch.optim.Optimizer) -> None:
        """Give a fused optimizer zero momentum buffers before its first step.

        Fused SGD makes its buffers with ``torch.empty_like`` at its first step and fills them
        then; when the scaler skips that step they keep whatever memory held (seen on the CPU), and
        every later step adds that to its update. Zeros give exactly the first step SGD defines.
        """
        if self.scaler is None or not self.recipe.momentum:
            return
        for group in optimizer.param_groups:
            for p in group["params"]:
                optimizer.state[p].setdefault("momentum_buffer", torch.zeros_like(p))

    @property
    def batch_size(self) -> int:
        """The batch size actually used (quick mode caps it)."""
        return min(self.data.batch_size, QUICK["batch_size"]) if self.quick else self.data.batch_size

    @property
    def interrupted(self) -> bool:
        """True when the last fit stopped before its end (``fit()`` continues it)."""
        return bool(self.history) and bool(self.history[-1].get("interrupted"))

    def lr_at(self, step: int, total: int) -> float:
        """The learning rate at ``step`` of ``total``: constant, or linear warm-up then cosine to 0."""
        r = self.recipe
        if r.schedule == "constant":
            return r.lr
        warm = max(1, int(r.warmup * total))
        if step < warm:
            return r.lr * (step + 1) / warm
        progress = (step - warm) / max(1, total - warm)
        return r.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    # ------------------------------------------------------------------------------------------
    # One step, one evaluation
    # ------------------------------------------------------------------------------------------

    def _prepare(self, X: torch.Tensor) -> torch.Tensor:
        return X.contiguous(memory_format=torch.channels_last) if self.channels_last else X

    def _autocast(self):
        """Mixed precision's context when it is on; none at all when it is off (see the module's notes)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def train_step(self, X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: forward (mixed precision on GPUs), loss, backward, clip, update.

        Returns the loss and the number of correct predictions as device tensors: reading them
        here with ``.item()`` would make the CPU wait for the GPU at every step.
        """
        with self._autocast():
            logits = self.forward_model(self._prepare(X))
        loss = F.cross_entropy(logits.float(), y, label_smoothing=self.recipe.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:       # float16: see _scaled_update
            self._scaled_update(loss)
        else:
            loss.backward()
            if self.recipe.clip_grad_norm:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.recipe.clip_grad_norm)
            self.optimizer.step()
        return loss.detach(), (logits.argmax(1) == y).sum()

    def _scaled_update(self, loss: torch.Tensor) -> None:
        """The float16 update: scaled backward, unscale, clip, then step unless gradients overflowed.

        float16 cannot hold gradients below about 6e-8, so the scaler multiplies the loss before
        the backward pass and divides the gradients after it. When they overflowed (inf or NaN)
        the step is skipped and the scale halved; a few skips at the start are how the scaler finds
        its scale. Skipped steps are counted in ``self._skipped`` (a device tensor, read once per
        epoch into the history's ``skipped_steps``).

        Host reads per step: none. The scaler must know whether to skip; with a plain optimizer it
        reads that from the device at every step, so the optimizer here is fused (one kernel that
        takes the overflow flag as a device tensor and skips on the device).
        """
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        norm = nn.utils.clip_grad_norm_(self.model.parameters(), self.recipe.clip_grad_norm or math.inf)
        self._skipped += ~torch.isfinite(norm)     # the scaler's own test: an inf or NaN gradient
        self.scaler.step(self.optimizer)
        self.scaler.update()

    @torch.no_grad()
    def evaluate(self, limit: int | None = None) -> dict:
        """Test loss and accuracy (on at most ``limit`` test images; quick mode caps it)."""
        if limit is not None:
            check_count("limit", limit, "It is the number of test images to use (None: all of them).",
                        error=ArgumentError)
        if self.quick:
            limit = min(limit or QUICK["eval_examples"], QUICK["eval_examples"])
        was_training = self.model.training
        self.model.eval()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        n = 0
        try:
            for X, y in self.data.test_batches(batch_size=max(self.batch_size, 256), limit=limit):
                with self._autocast():
                    logits = self.model(self._prepare(X))
                loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
                correct += (logits.argmax(1) == y).sum()
                n += len(y)
        finally:
            self.model.train(was_training)
        return {"test_loss": loss_sum.item() / n, "test_acc": correct.item() / n}

    # ------------------------------------------------------------------------------------------
    # The loop
    # ------------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask a running ``fit`` to stop after the current step (what the stop button does)."""
        self._stop = True

    @contextlib.contextmanager
    def _stop_on_interrupt(self):
        """While training, SIGINT (Ctrl-C, the notebook's stop button) sets the stop flag.

        A second interrupt while stopping raises ``KeyboardInterrupt`` as usual, but never in the
        middle of a step: it waits until the step's update is applied and counted.
        """
        self._stop = False
        self._raise_after_step = False
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            if not self._stop:
                self._stop = True
            elif self._in_step:
                self._raise_after_step = True
            else:
                raise KeyboardInterrupt

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def fit(self, epochs: int | None = None) -> None:
        """Train for ``epochs`` more epochs (default: the recipe's); results go to ``history``.

        Called without ``epochs`` after an interruption, it finishes the interrupted plan: the
        same batches in the same order from the step where it stopped, on the same schedule.
        Called with ``epochs``, it starts a new plan: a new learning-rate schedule over those
        epochs (warm-up included), continuing from the current weights.

        Raises TrainingDiverged when the loss becomes NaN/inf (the weights are put back as they
        were at the start of that epoch, and the history keeps a record of it).
        """
        if epochs is not None:
            check_count("epochs", epochs, "fit(n) trains n more epochs.")
        if epochs is not None or self._plan is None or self._plan["done"]:
            epochs = self.recipe.epochs if epochs is None else epochs
            if self.quick:
                epochs = min(epochs, QUICK["epochs"])
            steps = len(self.data.train_batches(epoch=0, rank=self.rank, world_size=self.world_size,
                                                batch_size=self.batch_size))
            if self.quick:
                steps = min(steps, QUICK["steps"])
            if steps == 0:
                raise ValueError(f"no training batch: {len(self.data.train_labels)} training images on "
                                 f"{self.world_size} process(es). Use more data (a larger subset).")
            self._plan = {"start": self.epoch, "end": self.epoch + epochs, "steps": steps,
                          "step": 0, "done": False, "partial": None, "warned": []}
        plan = self._plan
        for cb in self.callbacks:
            if hasattr(cb, "on_fit_start"):
                cb.on_fit_start(self)
        progress = _Progress(self) if self.rank == 0 else None
        try:
            with self._stop_on_interrupt():
                while self.epoch < plan["end"] and not self._stop:
                    self._run_epoch(plan, progress)
        except KeyboardInterrupt:
            # An interrupt the handler could not turn into a flag (outside the main thread, or a
            # second Ctrl-C during an evaluation): stop here; model, history and position are kept.
            pass
        except OutOfMemoryError:
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            raise TrainingOutOfMemory(
                f"out of GPU memory at batch_size={self.batch_size}, images {self.data.resize}x"
                f"{self.data.resize}, on {self.device}. Try a smaller batch, e.g. "
                f"Recipe(batch_size={max(1, self.batch_size // 2)}) or FashionMNIST(batch_size=...), a "
                "smaller resize, or mixed precision (amp=True); restart the kernel if memory stays "
                "full. The model and its history are kept.") from None
        finally:
            self.model.d2lcnn_trained_epochs = self.epoch   # a later Trainer warns before re-initialising
            if progress is not None:
                progress.close()

    def _step(self, X, y, lr, sums, plan) -> None:
        """One counted step: the update and its bookkeeping happen together or not at all."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self._in_step = True
        try:
            loss, right = self.train_step(X, y)
            sums["loss"] += loss * len(y)
            sums["correct"] += right
            sums["nonfinite"] += ~torch.isfinite(loss)
            sums["seen"] += len(y)
            plan["step"] += 1
            self._counted = self._updates
        finally:
            self._in_step = False
        if self._raise_after_step:
            raise KeyboardInterrupt

    def _run_epoch(self, plan: dict, progress) -> dict:
        epoch = self.epoch

        def steps_done() -> int:   # steps of this epoch done so far
            return plan["step"] - (epoch - plan["start"]) * plan["steps"]

        step_in_epoch = steps_done()
        batches = self.data.train_batches(epoch=epoch, start=step_in_epoch, rank=self.rank,
                                          world_size=self.world_size, batch_size=self.batch_size)
        total_steps = (plan["end"] - plan["start"]) * plan["steps"]
        # What an interrupted part of this epoch already did is carried on, so that the record
        # of the finished epoch covers all of it.
        partial = plan.get("partial") or {"loss": 0.0, "correct": 0, "nonfinite": 0, "seen": 0, "seconds": 0.0}
        sums = {"loss": torch.full((), float(partial["loss"]), device=self.device),
                "correct": torch.full((), int(partial["correct"]), device=self.device, dtype=torch.long),
                "nonfinite": torch.full((), int(partial["nonfinite"]), device=self.device, dtype=torch.long),
                "seen": int(partial["seen"])}
        self._skipped = torch.full((), int(partial.get("skipped", 0)), device=self.device, dtype=torch.long)
        good = {k: v.detach().clone() for k, v in self.model.state_dict().items()} if step_in_epoch == 0 else None
        self.model.train()
        start, lr, evaluated = time.perf_counter(), None, None
        warm = None      # (time, steps) after this epoch's first step, where the estimate's clock starts
        self._counted = self._updates
        try:
            for X, y in batches:
                if steps_done() >= plan["steps"]:
                    break
                lr = self.lr_at(plan["step"], total_steps)
                self._step(X, y, lr, sums, plan)
                if progress is not None:
                    progress.step(epoch, steps_done() / plan["steps"], sums["loss"], sums["correct"], sums["seen"])
                if warm is None:
                    warm = (time.perf_counter(), steps_done())
                else:
                    self._estimate(plan, warm[0], steps_done() - warm[1])
                if self._stop:
                    break
        except KeyboardInterrupt:
            # A raw KeyboardInterrupt (no handler of ours: outside the main thread): stop now and
            # still record the partial epoch. An update applied but not yet counted is counted
            # (its loss is not in the sums); one cut short is redone by the next fit().
            self._stop = True
            if self._updates > self._counted:
                plan["step"] += 1
        step_in_epoch = steps_done()
        seen = sums["seen"]
        train_seconds = partial["seconds"] + time.perf_counter() - start
        loss_sum, correct, nonfinite = sums["loss"].item(), sums["correct"].item(), sums["nonfinite"].item()
        skipped = self._skipped.item() if self.scaler is not None else 0
        record = {"epoch": epoch + 1,
                  "train_loss": loss_sum / seen if seen else None,
                  "train_acc": correct / seen if seen else None,
                  "lr": lr if lr is not None else (self.lr_at(max(plan["step"] - 1, 0), total_steps)),
                  "examples_per_s": (seen - partial["seen"]) * self.world_size / max(time.perf_counter() - start, 1e-9),
                  "device": str(self.device), "quick": self.quick, "skipped_steps": skipped}
        finished_training = step_in_epoch >= plan["steps"]
        if finished_training and not nonfinite:
            try:
                evaluated = self.evaluate()
            except KeyboardInterrupt:
                self._stop = True
        if evaluated is None:
            plan["partial"] = {"loss": loss_sum, "correct": correct, "nonfinite": nonfinite, "seen": seen,
                               "seconds": train_seconds, "skipped": skipped}
        diverged = bool(nonfinite) or (evaluated is not None and not math.isfinite(evaluated["test_loss"]))
        if diverged:
            record.update(test_loss=None, test_acc=None, seconds=train_seconds, interrupted=False, diverged=True,
                          nonfinite_steps=nonfinite)
        elif evaluated is None:
            record.update(test_loss=None, test_acc=None, seconds=train_seconds, interrupted=True,
                          steps_done=step_in_epoch, stopped_in="evaluation" if finished_training else "training")
        else:
            record.update(evaluated)
            record.update(seconds=partial["seconds"] + time.perf_counter() - start, interrupted=False)
            self.epoch += 1
            plan["step"] = (self.epoch - plan["start"]) * plan["steps"]
            plan["done"] = self.epoch >= plan["end"]
            plan["partial"] = None
        self.history.append(record)
        if progress is not None:
            progress.epoch_end(record)
        if diverged:
            self._diverged(record, good, plan)
        if not record["interrupted"]:
            self._watch_chance(record, plan)
            self._watch_skipped(record, plan)
            for cb in self.callbacks:
                if hasattr(cb, "on_epoch_end"):
                    cb.on_epoch_end(self, record)
        return record

    def _diverged(self, record: dict, good: dict | None, plan: dict) -> None:
        """Put the weights back to the start of the epoch (when known) and say what happened."""
        restored = "The weights are left as they are (the epoch began before an interruption)."
        if good is not None:
            self.model.load_state_dict(good)
            self.optimizer.state.clear()   # momentum that saw NaN gradients would bring them back
            self._zero_momentum(self.optimizer)
            restored = (f"The weights were put back as they were at the start of epoch {record['epoch']}"
                        " (the optimizer's momentum was cleared); the history keeps this epoch's record.")
        self._plan = None
        steps = record.get("nonfinite_steps") or 0
        bad, split = self._nonfinite_batches(record["epoch"] - 1, plan, training=bool(steps))
        if bad:
            raise TrainingDiverged(
                f"training stopped in epoch {record['epoch']}: the input images of {bad} {split} batch"
                f"{'es' if bad != 1 else ''} hold NaN or infinite values, so the loss did too; the learning rate "
                f"({self.recipe.lr:g}) is not the cause. {restored} Fix or drop those images (for a batch X, "
                "torch.isfinite(X).flatten(1).all(1) marks the good ones), then make a new Trainer.")
        where = f"in {steps} of its steps" if steps else "in the evaluation"
        bigger = "" if self.recipe.clip_grad_norm else ", gradient clipping (clip_grad_norm=5.0)"
        raise TrainingDiverged(
            f"training diverged in epoch {record['epoch']}: the loss became NaN or infinite {where} "
            f"(learning rate {self.recipe.lr:g}). {restored} Try a lower learning rate, e.g. "
            f"lr={self.recipe.lr / 10:g}{bigger}, or init='kaiming' for a ReLU network; then make a new "
            "Trainer.")

    def _nonfinite_batches(self, epoch: int, plan: dict, training: bool) -> tuple[int, str]:
        """How many of ``epoch``'s training batches (or of the test batches) hold NaN/inf: checked
        after a divergence, before the learning rate is blamed. The batches are a function of
        (seed, epoch), so these are the ones the epoch saw."""
        if training:
            batches = itertools.islice(self.data.train_batches(epoch=epoch, rank=self.rank, world_size=self.world_size,
                                                               batch_size=self.batch_size), plan["steps"])
        else:
            limit = QUICK["eval_examples"] if self.quick else None
            batches = self.data.test_batches(batch_size=max(self.batch_size, 256), limit=limit)
        with torch.no_grad():
            bad = sum(int(not bool(torch.isfinite(X).all())) for X, _ in batches)
        return bad, "training" if training else "test"

    warn_at_chance = True
    """False on a Trainer whose network is meant to fail (a lesson's control run): no "not learning" warning."""

    def _watch_chance(self, record: dict, plan: dict) -> None:
        """Warn once per fit when test accuracy is still near chance after two epochs."""
        if self.quick or not self.warn_at_chance or "chance" in plan["warned"] or self.epoch - plan["start"] < 2:
            return
        if record["test_acc"] is not None and record["test_acc"] < CHANCE:
            plan["warned"].append("chance")
            warn(f"after {self.epoch - plan['start']} epochs the test accuracy is {record['test_acc']:.3f}, about "
                 f"chance (0.1 for 10 classes): this network is not learning. Likely causes: the learning rate "
                 f"(lr={self.recipe.lr:g}) is too small or too large; the initialisation (init="
                 f"{self.recipe.init!r}; try 'xavier' for sigmoid networks, 'kaiming' for ReLU ones); saturated "
                 "sigmoids (large inputs or weights). Stop it (the stop button) and try another recipe.")

    def _watch_skipped(self, record: dict, plan: dict) -> None:
        """float16: warn once per fit when the scaler skipped many of an epoch's steps."""
        skipped, steps = record["skipped_steps"], plan["steps"]
        if "skipped" in plan["warned"] or skipped <= max(10, SKIPPED_WARN * steps):
            return
        plan["warned"].append("skipped")
        warn(f"{skipped} of the {steps} steps of epoch {record['epoch']} were skipped: their float16 gradients "
             "overflowed, and the gradient scaler skips such a step and halves its scale. A few at the start are "
             "normal; this many mean the weights barely moved. Try a lower learning rate (lr="
             f"{self.recipe.lr:g}), gradient clipping, or no mixed precision (Trainer(..., amp=False)).")

    def _estimate(self, plan: dict, start: float, steps_here: int) -> None:
        """Once per fit, after ESTIMATE_AFTER_S: warn when the rest would take longer than LONG_RUN_S.

        ``start`` is taken after an epoch's first step and ``steps_here`` counts the steps since:
        that first step holds ``torch.compile``'s compilation and cuDNN's autotuning, which a
        30-second compile would otherwise turn into "about 44 min more" for a run of seconds.
        """
        if "estimate" in plan["warned"] or steps_here < 2:
            return
        elapsed = time.perf_counter() - start
        if elapsed < ESTIMATE_AFTER_S:
            return
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)   # once per fit: the host ran ahead of the GPU
            elapsed = time.perf_counter() - start
        plan["warned"].append("estimate")
        self._check_cpu_contention()
        total_steps = (plan["end"] - plan["start"]) * plan["steps"]
        left = (total_steps - plan["step"]) * elapsed / steps_here
        if left < LONG_RUN_S:
            return
        warn(f"this fit will take about {_duration(left)} more on {self.device} ({elapsed / steps_here:.2f} s per "
             f"step, {total_steps - plan['step']:,} steps left). To finish sooner: a smaller setting (the "
             f"notebook's CPU setting, if you are not on it already), a smaller resize (now {self.data.resize}), "
             "fewer epochs or a subset of the data (FashionMNIST(subset=...)); on Colab, choose a GPU runtime. "
             "The stop button stops it after the current step; fit() continues from there.")

    def _check_cpu_contention(self) -> None:
        """Warn when a CPU fit runs several PyTorch threads on a machine that other programs keep busy.

        The threads of one operation wait for each other at its end; when other programs hold the
        cores, each wait lasts a scheduler's time slice. On a 2-core CPU with a load average of 20-30,
        one thread trained 10-12 times faster than two (lessons 13 and 14 measured it).
        """
        threads, cores = torch.get_num_threads(), os.cpu_count() or 1
        if self.device.type != "cpu" or threads < 2 or not hasattr(os, "getloadavg"):
            return
        load = os.getloadavg()[0]
        if load <= BUSY_LOAD_PER_CORE * cores + 1:
            return
        warn(f"this CPU is busy: load average {load:.0f} on {cores} cores, and PyTorch runs {threads} threads that "
             "wait for each other while other programs hold the cores. On a loaded 2-core CPU one thread trained "
             "10-12 times faster in our runs: call torch.set_num_threads(1) (it takes effect at once; fit() goes "
             "on where it is), or close the other programs.")

    # ------------------------------------------------------------------------------------------
    # Checkpoints
    # ------------------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> Path:
        """Write model, optimizer, history, recipe and data settings to ``path`` atomically.

        A crash or a kill mid-write leaves the previous checkpoint intact (see
        :mod:`d2lcnn.checkpoint`).
        """
        state = {"format": checkpoint.FORMAT, "arch": self.name,
                 "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                 "optimizer": self.optimizer.state_dict(), "history": self.history,
                 "recipe": dataclasses.asdict(self.recipe),
                 "data": {key: getattr(self.data, key) for key in DATA_SETTINGS},
                 "epoch": self.epoch,
                 "plan": _plain(self._plan) if self._plan else None,
                 "structure": checkpoint.structure(self.model)}
        if self.scaler is not None:    # float16: a resumed run goes on at the scale it had found
            state["scaler"] = self.scaler.state_dict()
        return checkpoint.save(state, path)

    @staticmethod
    def _recipe_of(path, state: dict) -> Recipe:
        checkpoint.check_fields(path, "recipe", state["recipe"], [f.name for f in dataclasses.fields(Recipe)])
        try:
            return Recipe(**state["recipe"])
        except ValueError as exc:
            raise CheckpointError(f"{path}: its recipe is invalid ({exc}). Nothing was loaded.") from None

    def load(self, path: str | os.PathLike) -> "Trainer":
        """Restore model, optimizer, history, recipe and position from a checkpoint, all or nothing.

        Everything is checked before anything changes: the format, the architecture's name
        (a ``lenet/fashion`` checkpoint does not go into ``lenet/paper``, even where the shapes
        would fit), every weight's shape, the recipe, and the data settings. A Trainer that made
        its own data rebuilds it as the checkpoint's run saw it (normalised or not, its resize);
        one given other data refuses a checkpoint trained on data prepared differently.
        A checkpoint saved after an interruption remembers where the fit stopped: ``fit()``
        after ``load`` finishes it, on the same batches and schedule.
        """
        state = checkpoint.read(path, map_location=self.device)
        ours, theirs = self.model.state_dict(), state["model"]
        problems = [f"{k}: {tuple(theirs[k].shape)} in the file, {tuple(ours[k].shape)} in the model"
                    for k in ours if k in theirs and theirs[k].shape != ours[k].shape]
        problems += [f"missing {k}" for k in ours if k not in theirs]
        problems += [f"unexpected {k}" for k in theirs if k not in ours]
        if state["arch"] != self.name or problems:
            shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
            raise CheckpointError(
                f"{path} holds a checkpoint of {state['arch']!r}, but this model is {self.name!r}"
                + (f" and does not fit it: {shown}" if problems else "") + ". Nothing was loaded. Build the same "
                "architecture (models.build with the name and configuration of the checkpoint), or use "
                "Trainer.from_checkpoint(path).")
        # A version-2 file records no structure: its names and shapes were checked above.
        differ = (checkpoint.structure_differences(state["structure"], checkpoint.structure(self.model))
                  if "structure" in state else [])
        if differ:
            raise CheckpointError(
                f"{path} holds a {state['arch']!r} built differently from this model: {'; '.join(differ)}. "
                "Nothing was loaded. Build the network as it was trained (the same models.build arguments, e.g. "
                "activation=nn.ReLU), then load it with Trainer(model, ...).load(path).")
        recipe = self._recipe_of(path, state)
        checkpoint.check_fields(path, "data settings", state["data"], list(DATA_SETTINGS))
        data = self.data
        if self._own_data:
            if any(getattr(self.data, k) != v for k, v in state["data"].items()):
                data = self._make_data(state["data"])
        else:
            differ = [f"{k}={v!r} in the checkpoint, {getattr(self.data, k)!r} in this Trainer's data"
                      for k, v in state["data"].items() if k != "seed" and getattr(self.data, k) != v]
            if differ:
                raise CheckpointError(
                    f"{path} was trained on data prepared differently: {'; '.join(differ)}. Nothing was "
                    "loaded. Give the Trainer FashionMNIST(...) with the checkpoint's settings, or no data "
                    "at all (it then makes the checkpoint's).")
        optimizer = torch.optim.SGD([{"params": g["params"]} for g in self.optimizer.param_groups], lr=recipe.lr)
        try:
            optimizer.load_state_dict(state["optimizer"])
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            raise CheckpointError(f"{path}: its optimizer state does not fit this model ({exc}). "
                                  "Nothing was loaded.") from None
        scaler = self.scaler
        if scaler is not None and state.get("scaler"):   # a float16 run's scale; other runs ignore it
            scaler = torch.amp.GradScaler(self.device.type)
            try:
                scaler.load_state_dict(state["scaler"])
            except (ValueError, KeyError, TypeError) as exc:
                raise CheckpointError(f"{path}: its gradient scaler's state is damaged ({exc}). "
                                      "Nothing was loaded.") from None
        # All checked: now change everything.
        self.model.load_state_dict(theirs)
        self.recipe, self.data, self.scaler = recipe, data, scaler
        self.optimizer = self._make_optimizer()
        fused = [group.get("fused") for group in self.optimizer.param_groups]
        self.optimizer.load_state_dict(state["optimizer"])
        for group, ours in zip(self.optimizer.param_groups, fused):   # fused as this Trainer needs, not as the saver's
            group["fused"] = ours
        self.history = list(state["history"])
        self.epoch = int(state["epoch"])
        self.model.d2lcnn_trained_epochs = self.epoch
        plan = state["plan"]
        self._plan = _plain(plan) if plan and not plan["done"] else None
        if self._plan is not None and self.quick:
            self._plan = _quick_plan(self._plan, self.epoch)
        return self


def _plain(plan: dict) -> dict:
    """A copy of a plan (nested dicts and lists copied too)."""
    return {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v) for k, v in plan.items()}


def _quick_plan(plan: dict, epoch: int) -> dict:
    """An interrupted plan cut to what quick mode allows: from the current epoch (``epoch``
    finished), at most QUICK's epochs and steps, keeping the position within the epoch."""
    steps = min(plan["steps"], QUICK["steps"])
    in_epoch = plan["step"] - (epoch - plan["start"]) * plan["steps"]
    return {**plan, "start": epoch, "end": min(plan["end"], epoch + QUICK["epochs"]), "steps": steps,
            "step": min(in_epoch, steps)}


def _duration(seconds: float) -> str:
    """3725 -> '1 h 2 min', 420 -> '7 min'."""
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{max(minutes, 1)} min"


class _Progress:
    """Progress for one ``fit``: a tqdm bar and a live plot in notebooks, lines in a terminal.

    The host reads the device's running sums (a synchronisation) only when the live plot is due
    (:class:`d2lcnn.curves.LiveCurves`: at most twice a second, and less often when a redraw
    would take more than 3% of the time).
    """

    def __init__(self, trainer: Trainer):
        self.trainer = trainer
        self.notebook = in_notebook()
        plan = trainer._plan
        total = (plan["end"] - plan["start"]) * plan["steps"]
        note = " (quick mode)" if trainer.quick else ""
        self.live: list[dict] = []
        self.bar = self.curves = None
        self.handle = None
        # Once per fit, what runs: in a notebook the cell's output says it (stdout), in a terminal stderr.
        print(trainer.path, file=sys.stdout if self.notebook else sys.stderr, flush=True)
        if self.notebook:
            import ipywidgets as widgets
            from IPython.display import display
            from tqdm.notebook import tqdm

            # Shown through a display handle, so that close() can replace the text a saved notebook
            # keeps for readers without widgets (GitHub, nbviewer): the final state, not "0%".
            self.bar = tqdm(total=total, initial=plan["step"], desc=f"training{note}", unit="step", display=False)
            self.handle = display(self.bar.container, display_id=True)
            from .curves import LiveCurves

            out = widgets.Output()
            out.add_class("d2lcnn-live-plot")
            display(out)
            self.curves = LiveCurves(out)
        elif note:
            print(f"quick mode (D2LCNN_QUICK=1): at most {QUICK['epochs']} epoch, {QUICK['steps']} steps, "
                  f"batch {QUICK['batch_size']}, {QUICK['eval_examples']} test images", file=sys.stderr, flush=True)

    def step(self, epoch: int, fraction: float, loss_sum, correct, seen: int) -> None:
        if self.bar is None:  # a terminal prints per epoch: nothing to read mid-epoch
            return
        self.bar.update(1)
        if not self.curves.due():
            return
        point = {"epoch": epoch + fraction, "train_loss": loss_sum.item() / seen,
                 "train_acc": correct.item() / seen}
        self.live.append(point)
        self.bar.set_postfix(epoch=epoch + 1, loss=f"{point['train_loss']:.3f}",
                             acc=f"{point['train_acc']:.3f}", refresh=False)
        self.draw()

    def epoch_end(self, record: dict) -> None:
        t = self.trainer
        if record.get("interrupted"):
            where = ("during its evaluation" if record.get("stopped_in") == "evaluation"
                     else f"after {record['steps_done']} of {t._plan['steps']} steps")
            message = (f"Stopped in epoch {record['epoch']} {where}; the model and its history are kept. "
                       "Run trainer.fit() to go on from there (the same batches, the same schedule).")
            # In a notebook the cell's own output says it (stdout), in a terminal stderr does.
            print(message, file=sys.stdout if self.notebook else sys.stderr, flush=True)
        if self.notebook:
            if record.get("train_acc") is not None:   # the bar ends on the epoch's figures, not a mid-epoch reading
                test = {} if record.get("test_acc") is None else {"test_acc": f"{record['test_acc']:.3f}"}
                self.bar.set_postfix(epoch=record["epoch"], loss=f"{record['train_loss']:.3f}",
                                     acc=f"{record['train_acc']:.3f}", **test)
            self.draw()
            return
        if record.get("interrupted"):
            return
        def f(key):
            return "-" if record[key] is None else f"{record[key]:.3f}"

        print(f"epoch {record['epoch']:>3}/{t._plan['end']}  train loss {f('train_loss')}  "
              f"train acc {f('train_acc')}  test acc {f('test_acc')}  "
              f"{record['seconds']:.1f} s  {record['examples_per_s']:,.0f} examples/s", file=sys.stderr, flush=True)

    def draw(self) -> None:
        """Redraw the live plot in its Output."""
        if self.curves is None:
            return
        history = [r for r in self.trainer.history if not r.get("interrupted")]
        self.curves.draw(self.live + history)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.handle is not None:
            self.handle.update(self.bar.container)
