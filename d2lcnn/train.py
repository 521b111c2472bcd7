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
  channels-last, and bfloat16 autocast where the CPU has bfloat16 instructions (AVX512-BF16 or
  AMX; float32 elsewhere): its training steps ran 1.1-2.9 times as fast as float32's on the
  development machine's 2-core CPU (2.1 times in the median over the seventeen ``fashion``
  networks; ``python -m d2lcnn speed``, ``measurements/cpu-path.json``) and trained to float32's
  accuracy at every lesson's CPU setting (within 1 point, ResNet-18 1.85 higher with one seed of
  two). Three networks measured slower in bfloat16 and keep float32 (their registrations say
  ``cpu={"amp": False}``). ``torch.compile`` on request. Without mixed precision no autocast context is entered at all (before torch 2.5,
  even a disabled one raises on Apple's MPS).
* **One kernel per update.** The SGD is fused wherever torch has it for the device, the CPU
  included (:func:`d2lcnn.recipe.make_optimizer`): PyTorch's default there loops over the
  parameter tensors, which cost AlexNet and VGG about a quarter of their CPU training step.
* **Honest in a notebook** (:mod:`d2lcnn.progress`). A progress bar and a live plot of the
  curves; in a terminal, one line per epoch on stderr (stdout stays free for results). The stop
  button (or Ctrl-C) stops after the current step (:mod:`d2lcnn.interrupt`) and keeps the model
  and the history; ``fit()`` then continues exactly where it stopped.
* **Checkpoints** (:mod:`d2lcnn.checkpoint`) hold model, optimizer, history, recipe and data
  settings; they are written atomically and loaded all or nothing: one of another architecture,
  or one that does not fit, is refused before anything changes.
* **Nothing fails silently.** A bad setting is refused when the Recipe (:mod:`d2lcnn.recipe`)
  or the Trainer is made (:mod:`d2lcnn.guards`), before any data loads; so is an image size the
  model cannot take. Watchers (:mod:`d2lcnn.watch`, each one switchable off) check the run: a
  loss that becomes NaN/inf stops the fit (the weights go back to the last good epoch); a run
  stuck at chance level, a long run, several threads on a CPU that other programs keep busy each
  get a warning that says what to do; so does a Trainer about to re-initialise a trained network.
* **Quick mode** (``D2LCNN_QUICK=1``) caps epochs, steps, batch size and evaluation so that CI
  runs every notebook in seconds on a CPU without a change to the notebook.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import checkpoint
from . import models as registry
from .data import CLASSES, FashionMNIST
from .guards import ArgumentError, check_count, check_model_fits
from .interrupt import StopRequest
from .progress import Progress, in_notebook
from .recipe import DATA_SETTINGS, Recipe, init_weights, make_optimizer
from .runtime import QUICK, default_device, native_bf16, quick_mode
from .watch import (BUSY_LOAD_PER_CORE, CHANCE, ESTIMATE_AFTER_S, LONG_RUN_S, SKIPPED_WARN, BusyCpu, Chance,
                    Divergence, Estimate, SkippedSteps, warn)

# Importable from here too, as the lessons, the README and the command line import them.
from .checkpoint import CheckpointError  # noqa: F401,E402
from .watch import TrainingDiverged, TrainingWarning  # noqa: F401,E402

# torch.OutOfMemoryError exists from torch 2.5; before that only the CUDA one.
OutOfMemoryError = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


class TrainingOutOfMemory(RuntimeError):
    """The GPU ran out of memory; the message says with which batch and what to try."""


def default_watchers() -> list:
    """The watchers (:mod:`d2lcnn.watch`) a Trainer gets when it is not given ``watchers=``.

    Their thresholds are read from this module each time, so that a test or a lesson can change
    one here (``train.LONG_RUN_S = 60``) for the Trainers it makes next.
    """
    return [Divergence(), Chance(CHANCE), SkippedSteps(SKIPPED_WARN),
            Estimate(ESTIMATE_AFTER_S, LONG_RUN_S, busy=BusyCpu(BUSY_LOAD_PER_CORE))]


def gpu_capability(device: torch.device) -> tuple[int, int] | None:
    """The CUDA compute capability of ``device`` (a T4: (7, 5), an H100: (9, 0)); None off CUDA."""
    return torch.cuda.get_device_capability(device) if device.type == "cuda" else None


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast precision of ``device``, or None where float32 is fastest.

    CUDA: bfloat16 on GPUs that have it natively (compute capability >= 8.0), else float16;
    ``torch.cuda.is_bf16_supported()`` says True on a T4 too, where bf16 is emulated and slow.
    float16 needs a gradient scaler (see :func:`scaled_update`). CPU: bfloat16 where the CPU
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
    channels-last. On the CPU, channels-last, and bfloat16 autocast where the CPU has bfloat16
    instructions: ``python -m d2lcnn speed`` measured both faster for most ``fashion`` networks, and
    the two paths trained to the same accuracy at the lessons' CPU settings
    (``measurements/cpu-path.json``). A network for which a part measured slower says so in its
    registration and gets it off: ``cpu={"amp": False}`` for ShuffleNet V2 and EfficientNet-B0,
    ``cpu={"channels_last": False, "amp": False}`` for the tiny BN-LeNet. Elsewhere (Apple's MPS)
    float32, contiguous. ``torch.compile`` only when asked (``compile=True``): its compile time has
    to be won back within the fit, and we have not measured that it is in a lesson's CPU fit.
    """
    gpu = gpu_capability(device) is not None
    cpu = device.type == "cpu" and not gpu
    tuned = {}
    if cpu and name and "/" in name:
        with contextlib.suppress(KeyError):
            tuned = registry.spec(*name.split("/", 1)).cpu
    use_amp = (gpu or (cpu and tuned.get("amp", True))) if amp is None else amp
    dtype = amp_dtype(device) if use_amp else None
    why = ""
    if amp is False:
        why = "amp=False"
    elif cpu and not native_bf16():
        why = "this CPU has no bfloat16 instructions"
    elif cpu and not use_amp:
        why = "measured faster than bfloat16 for this network"
    if channels_last is None:
        channels_last = tuned.get("channels_last", gpu or cpu)
    return ComputePath(device, dtype, channels_last, compile, why if dtype is None else "")


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


def scaled_update(scaler: torch.amp.GradScaler, optimizer: torch.optim.Optimizer, loss: torch.Tensor,
                  parameters, clip_grad_norm: float | None) -> torch.Tensor:
    """The float16 update: scaled backward, unscale, clip, then step unless gradients overflowed.

    float16 cannot hold gradients below about 6e-8, so the scaler multiplies the loss before
    the backward pass and divides the gradients after it. When they overflowed (inf or NaN)
    the step is skipped and the scale halved; a few skips at the start are how the scaler finds
    its scale. Returns 1 (a device tensor) for a skipped step, else 0: the Trainer sums them in
    ``_skipped``, read once per epoch into the history's ``skipped_steps``.

    Host reads per step: none. The scaler must know whether to skip; with a plain optimizer it
    reads that from the device at every step, so the optimizer is fused (one kernel that
    takes the overflow flag as a device tensor and skips on the device).
    """
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    norm = nn.utils.clip_grad_norm_(parameters, clip_grad_norm or math.inf)
    scaler.step(optimizer)
    scaler.update()
    return ~torch.isfinite(norm)     # the scaler's own test: an inf or NaN gradient


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
        callbacks: objects with any of the methods ``on_fit_start(trainer)``,
            ``on_epoch_start(trainer)``, ``on_step(trainer)`` (after each step) and
            ``on_epoch_end(trainer, record)`` (after each epoch not interrupted), e.g. ``viz.Replay``.
        watchers: callbacks of the same kind that check the run (:mod:`d2lcnn.watch`), called
            before ``callbacks``; by default :func:`default_watchers`. ``watchers=[]`` turns them
            all off; ``trainer.watchers`` is a list to remove one from.
        compile: run the model through ``torch.compile``.
        amp: mixed precision; by default on CUDA (see :func:`amp_dtype`; float16 brings a
            ``torch.amp.GradScaler``, ``self.scaler``, which is None otherwise) and on a CPU with
            bfloat16 instructions, unless the network is registered to keep float32 there (see
            :func:`compute_path`, which chooses these three; ``trainer.path`` says what it chose).
        channels_last: channels-last memory format; by default on CUDA and the CPU.
        seed: seeds the weights' initialisation and the data order: the same seed gives the
            same network and the same run.
        name: the architecture's name recorded in checkpoints (default: the registry's tag).

    Everything is checked before the data loads: the device exists, and an image of the data's
    size fits the model (otherwise InputMismatchError names the layer where it breaks).
    """

    warn_at_chance = True
    """False on a Trainer whose network is meant to fail (a lesson's control run): no "not learning" warning."""

    def __init__(self, model: nn.Module, data: FashionMNIST | None = None, recipe: Recipe | None = None,
                 device: str | torch.device | None = None, callbacks=(), compile: bool = False,
                 amp: bool | None = None, channels_last: bool | None = None, seed: int = 0,
                 name: str | None = None, watchers=None):
        _check_arguments(model, recipe, seed)
        self.recipe = recipe or Recipe()
        self.device = default_device(device if device is not None else (data.device if data else None))
        self.quick = quick_mode()
        self.seed = seed
        self.name = name or getattr(model, "d2lcnn_name", type(model).__name__)
        self.build = getattr(model, "d2lcnn_build", {})   # models.build's arguments, for checkpoints
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
        self._place(model, compute_path(self.device, self.name, amp, channels_last, compile))
        self.optimizer = self._make_optimizer()
        self.callbacks = list(callbacks)
        self.watchers = default_watchers() if watchers is None else list(watchers)
        self.history: list[dict] = []
        self.epoch = 0              # finished epochs
        self._plan: dict | None = None   # the current fit: epochs to reach, steps, position
        self.stopping = StopRequest()   # the stop button, Ctrl-C and stop(): after the current step

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str | torch.device | None = None,
                        **kwargs) -> "Trainer":
        """A Trainer for a checkpoint of a registered network: the same architecture, recipe and
        data settings, with the weights, optimizer, history and position restored.

        ``fit()`` then finishes an interrupted run; ``fit(n)`` trains ``n`` more epochs.
        """
        state = checkpoint.read(path, map_location="cpu")
        model, recipe = checkpoint.network_of(path, state), checkpoint.recipe_of(path, state)
        return cls(model, recipe=dataclasses.replace(recipe, init="none"), device=device,
                   seed=state["data"].get("seed", 0), **kwargs).load(path)

    # ------------------------------------------------------------------------------------------
    # Set-up
    # ------------------------------------------------------------------------------------------

    def _make_data(self, settings: dict) -> FashionMNIST:
        """The data as ``settings`` (the keys of DATA_SETTINGS) say, on the training device."""
        return FashionMNIST(device=self.device, **settings)

    def _place(self, model: nn.Module, path: ComputePath) -> None:
        """Put ``model`` on the device as ``path`` says; wrap it for torchrun and torch.compile."""
        cuda = self.device.type == "cuda"
        self.path = path
        self.channels_last, self.amp_dtype = path.channels_last, path.amp_dtype
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
        if path.compile:
            self.forward_model = torch.compile(self.forward_model)
        # float16 (a T4) needs a gradient scaler, which the fused optimizer serves without a host read (see scaled_update).
        self.scaler = torch.amp.GradScaler(self.device.type) if self.amp_dtype == torch.float16 else None
        self._skipped = torch.zeros((), device=self.device, dtype=torch.long)   # steps the scaler skipped

    def _make_optimizer(self) -> torch.optim.Optimizer:
        """The recipe's SGD (fused where torch has it: see make_optimizer), counting its updates."""
        optimizer = make_optimizer(self.model, self.recipe)
        # Counts the updates really applied, so that an interrupt landing between the update and
        # the loop's own count cannot make a resumed fit apply that update twice.
        self._updates = 0
        optimizer.register_step_post_hook(self._count_update)
        return optimizer

    def _count_update(self, optimizer, args, kwargs) -> None:
        self._updates += 1

    @property
    def batch_size(self) -> int:
        """The batch size actually used (quick mode caps it)."""
        return min(self.data.batch_size, QUICK["batch_size"]) if self.quick else self.data.batch_size

    @property
    def interrupted(self) -> bool:
        """True when the last fit stopped before its end (``fit()`` continues it)."""
        return bool(self.history) and bool(self.history[-1].get("interrupted"))

    @property
    def plan(self) -> dict | None:
        """The current fit: ``start`` and ``end`` epochs, ``steps`` per epoch, ``step`` reached,
        ``partial`` sums of an interrupted epoch, the watchers' ``warned``; None before a fit."""
        return self._plan

    @property
    def step_in_epoch(self) -> int:
        """The steps of the current epoch done so far."""
        return self._plan["step"] - (self.epoch - self._plan["start"]) * self._plan["steps"]

    def lr_at(self, step: int, total: int) -> float:
        """The learning rate at ``step`` of ``total`` (the recipe's schedule)."""
        return self.recipe.lr_at(step, total)

    def train_batches(self, epoch: int, start: int = 0):
        """This process's training batches of ``epoch`` from step ``start``, at the batch size used."""
        return self.data.train_batches(epoch=epoch, start=start, rank=self.rank, world_size=self.world_size,
                                       batch_size=self.batch_size)

    def test_batches(self, limit: int | None = None):
        """The test batches (at most ``limit`` images; quick mode caps them)."""
        if self.quick:
            limit = min(limit or QUICK["eval_examples"], QUICK["eval_examples"])
        return self.data.test_batches(batch_size=max(self.batch_size, 256), limit=limit)

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
        """One step: forward (in mixed precision where the compute path says so), loss, backward, clip, update.

        Returns the loss and the number of correct predictions as device tensors: reading them
        here with ``.item()`` would make the CPU wait for the GPU at every step.
        """
        with self._autocast():
            logits = self.forward_model(self._prepare(X))
        loss = F.cross_entropy(logits.float(), y, label_smoothing=self.recipe.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:       # float16: see scaled_update
            self._skipped += scaled_update(self.scaler, self.optimizer, loss, self.model.parameters(),
                                           self.recipe.clip_grad_norm)
        else:
            loss.backward()
            if self.recipe.clip_grad_norm:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.recipe.clip_grad_norm)
            self.optimizer.step()
        return loss.detach(), (logits.argmax(1) == y).sum()

    @torch.no_grad()
    def evaluate(self, limit: int | None = None) -> dict:
        """Test loss and accuracy (on at most ``limit`` test images; quick mode caps it)."""
        if limit is not None:
            check_count("limit", limit, "It is the number of test images to use (None: all of them).",
                        error=ArgumentError)
        was_training = self.model.training
        self.model.eval()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        n = 0
        try:
            for X, y in self.test_batches(limit):
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
        self.stopping.request()

    def fit(self, epochs: int | None = None) -> None:
        """Train for ``epochs`` more epochs (default: the recipe's); results go to ``history``.

        Called without ``epochs`` after an interruption, it finishes the interrupted plan: the
        same batches in the same order from the step where it stopped, on the same schedule.
        Called with ``epochs``, it starts a new plan: a new learning-rate schedule over those
        epochs (warm-up included), continuing from the current weights.

        Raises TrainingDiverged when the loss becomes NaN/inf (the weights are put back as they
        were at the start of that epoch, and the history keeps a record of it): the
        :class:`~d2lcnn.watch.Divergence` watcher does that. Without it the fit ends there too,
        with the record, but the weights stay as they became.
        """
        if epochs is not None:
            check_count("epochs", epochs, "fit(n) trains n more epochs.")
        if epochs is not None or self._plan is None or self._plan["done"]:
            self._plan = self._new_plan(self.recipe.epochs if epochs is None else epochs)
        plan = self._plan
        self._notify("on_fit_start")
        progress = Progress(self, in_notebook()) if self.rank == 0 else None
        try:
            with self.stopping.catching_interrupts():    # Ctrl-C: stop after the current step
                while self.epoch < plan["end"] and not self.stopping.requested:
                    self._run_epoch(plan, progress)
        except KeyboardInterrupt:
            # An interrupt the handler could not turn into a flag (outside the main thread, or a
            # second Ctrl-C during an evaluation): stop here; model, history and position are kept.
            pass
        except OutOfMemoryError:
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            raise _out_of_memory(self) from None
        finally:
            self.model.d2lcnn_trained_epochs = self.epoch   # a later Trainer warns before re-initialising
            if progress is not None:
                progress.close()

    def _new_plan(self, epochs: int) -> dict:
        """A fit of ``epochs`` more epochs from here (quick mode caps epochs and steps)."""
        if self.quick:
            epochs = min(epochs, QUICK["epochs"])
        steps = len(self.train_batches(0))
        if self.quick:
            steps = min(steps, QUICK["steps"])
        if steps == 0:
            raise ValueError(f"no training batch: {len(self.data.train_labels)} training images on "
                             f"{self.world_size} process(es). Use more data (a larger subset).")
        return {"start": self.epoch, "end": self.epoch + epochs, "steps": steps,
                "step": 0, "done": False, "partial": None, "warned": []}

    def _notify(self, hook: str, *args) -> None:
        """Call ``hook`` (e.g. "on_epoch_end") on every watcher, then every callback, that has it."""
        for listener in self.watchers + self.callbacks:
            if hasattr(listener, hook):
                getattr(listener, hook)(self, *args)

    def _step(self, X, y, lr, sums, plan) -> None:
        """One counted step: the update and its bookkeeping happen together or not at all."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with self.stopping.step():
            loss, right = self.train_step(X, y)
            sums["loss"] += loss * len(y)
            sums["correct"] += right
            sums["nonfinite"] += ~torch.isfinite(loss)
            sums["seen"] += len(y)
            plan["step"] += 1
            self._counted = self._updates

    def _run_epoch(self, plan: dict, progress) -> dict:
        """One epoch, or the rest of an interrupted one: its steps, its record, the watchers' turn.

        What an interrupted part of this epoch already did is carried on (``plan["partial"]``),
        so that the record of the finished epoch covers all of it.
        """
        epoch, total_steps = self.epoch, (plan["end"] - plan["start"]) * plan["steps"]
        batches = self.train_batches(epoch, start=self.step_in_epoch)
        partial = plan.get("partial") or {"loss": 0.0, "correct": 0, "nonfinite": 0, "seen": 0, "seconds": 0.0}
        sums = self._running_sums(partial)
        self._notify("on_epoch_start")
        self.model.train()
        start, lr = time.perf_counter(), None
        self._counted = self._updates
        try:
            for X, y in batches:
                if self.step_in_epoch >= plan["steps"]:
                    break
                lr = self.lr_at(plan["step"], total_steps)
                self._step(X, y, lr, sums, plan)
                if progress is not None:
                    progress.step(epoch, self.step_in_epoch / plan["steps"], sums["loss"], sums["correct"],
                                  sums["seen"])
                self._notify("on_step")
                if self.stopping.requested:
                    break
        except KeyboardInterrupt:
            # A raw KeyboardInterrupt (no handler of ours: outside the main thread): stop now and
            # still record the partial epoch. An update applied but not yet counted is counted
            # (its loss is not in the sums); one cut short is redone by the next fit().
            self.stopping.request()
            if self._updates > self._counted:
                plan["step"] += 1
        if lr is None:
            lr = self.lr_at(max(plan["step"] - 1, 0), total_steps)
        record = self._end_epoch(plan, sums, partial, lr, start)
        self.history.append(record)
        if progress is not None:
            progress.epoch_end(record)
        try:
            if not record["interrupted"]:
                self._notify("on_epoch_end", record)   # Divergence, the first watcher, raises on a diverged record
        finally:
            if record.get("diverged"):   # a diverged fit ends here, with or without Divergence
                self._plan = None
                self.stopping.request()
        return record

    def _running_sums(self, partial: dict) -> dict:
        """The epoch's running sums on the device, from where an interrupted part left them (and
        the steps the scaler skipped, in ``self._skipped``): no step waits for the host."""
        self._skipped = torch.full((), int(partial.get("skipped", 0)), device=self.device, dtype=torch.long)
        return {"loss": torch.full((), float(partial["loss"]), device=self.device),
                "correct": torch.full((), int(partial["correct"]), device=self.device, dtype=torch.long),
                "nonfinite": torch.full((), int(partial["nonfinite"]), device=self.device, dtype=torch.long),
                "seen": int(partial["seen"])}

    def _end_epoch(self, plan: dict, sums: dict, partial: dict, lr: float, start: float) -> dict:
        """The epoch's record: evaluated when all its steps are done with a finite loss, else
        ``diverged`` or ``interrupted`` (its running sums then kept in the plan)."""
        step_in_epoch, seen = self.step_in_epoch, sums["seen"]
        train_seconds = partial["seconds"] + time.perf_counter() - start
        loss_sum, correct, nonfinite = sums["loss"].item(), sums["correct"].item(), sums["nonfinite"].item()
        skipped = self._skipped.item() if self.scaler is not None else 0
        record = {"epoch": self.epoch + 1, "train_loss": loss_sum / seen if seen else None,
                  "train_acc": correct / seen if seen else None, "lr": lr,
                  "examples_per_s": (seen - partial["seen"]) * self.world_size / max(time.perf_counter() - start, 1e-9),
                  "device": str(self.device), "quick": self.quick, "skipped_steps": skipped}
        finished_training, evaluated = step_in_epoch >= plan["steps"], None
        if finished_training and not nonfinite:
            try:
                evaluated = self.evaluate()
            except KeyboardInterrupt:
                self.stopping.request()
        if evaluated is None:
            plan["partial"] = {"loss": loss_sum, "correct": correct, "nonfinite": nonfinite, "seen": seen,
                               "seconds": train_seconds, "skipped": skipped}
        if nonfinite or (evaluated is not None and not math.isfinite(evaluated["test_loss"])):
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
        return record

    # ------------------------------------------------------------------------------------------
    # Checkpoints (the file and its checks: d2lcnn.checkpoint)
    # ------------------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> Path:
        """Write model, optimizer, history, recipe and data settings to ``path`` atomically.

        A crash or a kill mid-write leaves the previous checkpoint intact (see
        :mod:`d2lcnn.checkpoint`).
        """
        return checkpoint.save(checkpoint.state_of(self), path)

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
        checkpoint.check_model(path, state, self.model, self.name)
        recipe = checkpoint.recipe_of(path, state)
        settings = checkpoint.data_settings(path, state, self.data, own_data=self._own_data)
        data = self.data if settings is None else self._make_data(settings)
        checkpoint.check_optimizer(path, state, self.optimizer, recipe.lr)
        scaler = checkpoint.scaler_of(path, state, self.scaler, self.device.type)
        # All checked: now change everything.
        self.model.load_state_dict(state["model"])
        self.recipe, self.data, self.scaler = recipe, data, scaler
        self.optimizer = self._make_optimizer()
        checkpoint.restore_optimizer(self.optimizer, state["optimizer"])
        self.history, self.epoch = list(state["history"]), int(state["epoch"])
        self.model.d2lcnn_trained_epochs = self.epoch
        self._plan = checkpoint.unfinished_plan(state)
        if self._plan is not None and self.quick:
            self._plan = _quick_plan(self._plan, self.epoch)
        return self


def _out_of_memory(trainer: Trainer) -> TrainingOutOfMemory:
    """The error for a fit that ran out of GPU memory: at what size, and what to try."""
    return TrainingOutOfMemory(
        f"out of GPU memory at batch_size={trainer.batch_size}, images {trainer.data.resize}x"
        f"{trainer.data.resize}, on {trainer.device}. Try a smaller batch, e.g. "
        f"Recipe(batch_size={max(1, trainer.batch_size // 2)}) or FashionMNIST(batch_size=...), a "
        "smaller resize, or mixed precision (amp=True); restart the kernel if memory stays "
        "full. The model and its history are kept.")


def _quick_plan(plan: dict, epoch: int) -> dict:
    """An interrupted plan cut to what quick mode allows: from the current epoch (``epoch``
    finished), at most QUICK's epochs and steps, keeping the position within the epoch."""
    steps = min(plan["steps"], QUICK["steps"])
    in_epoch = plan["step"] - (epoch - plan["start"]) * plan["steps"]
    return {**plan, "start": epoch, "end": min(plan["end"], epoch + QUICK["epochs"]), "steps": steps,
            "step": min(in_epoch, steps)}
