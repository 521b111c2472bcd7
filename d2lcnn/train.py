"""The Trainer: one training loop for every notebook and the command line.

What it does for you, and why:

* **Data on the device.** Batches come from :class:`d2lcnn.data.FashionMNIST`, which lives on
  the training device: no DataLoader, no copies per step.
* **No waiting for the GPU.** Loss and accuracy are summed in device tensors; the host reads
  them (a synchronisation) at most twice a second for the progress bar, and once per epoch.
* **Mixed precision and channels-last on CUDA.** bfloat16 on GPUs that have it natively
  (compute capability 8.0 or newer), float16 with a gradient scaler otherwise (a T4);
  ``torch.compile`` on request. On the CPU, plain float32 is fastest for these small networks.
* **Honest in a notebook.** A progress bar and a live plot of the curves; in a terminal, one
  line per epoch on stderr (stdout stays free for results). The stop button (or Ctrl-C) stops after the current step and keeps the model
  and the history; ``fit()`` then continues exactly where it stopped.
* **Checkpoints** hold model, optimizer, history and recipe, are written atomically and loaded
  with ``weights_only=True``; one of another architecture is refused with a clear message.
* **Quick mode** (``D2LCNN_QUICK=1``) caps epochs, steps, batch size and evaluation so that CI
  runs every notebook in seconds on a CPU without a change to the notebook.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import models as registry
from .data import FashionMNIST
from .runtime import default_device, quick_mode

QUICK = {"epochs": 1, "steps": 5, "batch_size": 32, "eval_examples": 256}
"""What quick mode allows at most: epochs per fit, steps per epoch, batch size, test examples."""

CHECKPOINT_FORMAT = "d2lcnn-checkpoint-1"

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


class CheckpointError(ValueError):
    """A checkpoint that does not fit this model (another architecture or other shapes)."""


class TrainingOutOfMemory(RuntimeError):
    """The GPU ran out of memory; the message says with which batch and what to try."""


def init_weights(model: nn.Module, how: str) -> None:
    """Initialise Conv2d and Linear weights: "xavier" as the book, "kaiming" for ReLU networks.

    "kaiming" is what lets deep ReLU networks without normalisation (AlexNet, VGG, NiN) start
    learning at once; with the book's Xavier weights and a large constant learning rate they
    sometimes never leave chance level.
    """
    if how == "none":
        return
    if how not in ("xavier", "kaiming"):
        raise ValueError(f"init must be 'xavier', 'kaiming' or 'none', got {how!r}")
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


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """bfloat16 on GPUs that have it natively (compute capability >= 8.0), else float16; None off CUDA.

    ``torch.cuda.is_bf16_supported()`` says True on a T4 too, where bf16 is emulated and slow.
    """
    if device.type != "cuda":
        return None
    major, _ = torch.cuda.get_device_capability(device)
    return torch.bfloat16 if major >= 8 else torch.float16


def in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, Colab), where widgets can be shown."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and any(c.__name__ == "ZMQInteractiveShell" for c in type(shell).__mro__)


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
        amp: mixed precision; default on for CUDA (see :func:`amp_dtype`).
        channels_last: channels-last memory format; default on for CUDA.
        seed: seeds the weights' initialisation and the data order.
        name: the architecture's name recorded in checkpoints (default: the registry's tag).
    """

    def __init__(self, model: nn.Module, data: FashionMNIST | None = None, recipe: Recipe | None = None,
                 device: str | torch.device | None = None, callbacks=(), compile: bool = False,
                 amp: bool | None = None, channels_last: bool | None = None, seed: int = 0,
                 name: str | None = None):
        self.recipe = recipe or Recipe()
        self.device = default_device(device if device is not None else (data.device if data else None))
        self.quick = quick_mode()
        self.seed = seed
        torch.manual_seed(seed)
        if data is None:
            data = FashionMNIST(batch_size=self.recipe.batch_size, resize=self.recipe.resize,
                                device=self.device, augment=self.recipe.augment,
                                normalize=self.recipe.normalize, seed=seed)
        self.data = data
        self.name = name or getattr(model, "d2lcnn_name", type(model).__name__)
        init_weights(model, self.recipe.init)
        cuda = self.device.type == "cuda"
        self.channels_last = cuda if channels_last is None else channels_last
        self.amp_dtype = amp_dtype(self.device) if (amp is None or amp) else None
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
        if compile:
            self.forward_model = torch.compile(self.forward_model)
        self.optimizer = self._make_optimizer()
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.callbacks = list(callbacks)
        self.history: list[dict] = []
        self.epoch = 0              # finished epochs
        self._plan: dict | None = None   # the current fit: epochs to reach, steps, position
        self._stop = False

    # ------------------------------------------------------------------------------------------
    # Set-up
    # ------------------------------------------------------------------------------------------

    def _make_optimizer(self) -> torch.optim.Optimizer:
        r = self.recipe
        decay = [p for p in self.model.parameters() if p.requires_grad and p.dim() > 1]
        no_decay = [p for p in self.model.parameters() if p.requires_grad and p.dim() <= 1]
        groups = [{"params": decay, "weight_decay": r.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        return torch.optim.SGD(groups, lr=r.lr, momentum=r.momentum, nesterov=r.nesterov and r.momentum > 0)

    @property
    def batch_size(self) -> int:
        """The batch size actually used (quick mode caps it)."""
        return min(self.data.batch_size, QUICK["batch_size"]) if self.quick else self.data.batch_size

    def lr_at(self, step: int, total: int) -> float:
        """The learning rate at ``step`` of ``total``: constant, or linear warm-up then cosine to 0."""
        r = self.recipe
        if r.schedule == "constant":
            return r.lr
        if r.schedule != "onecycle":
            raise ValueError(f"schedule must be 'constant' or 'onecycle', got {r.schedule!r}")
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

    def train_step(self, X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: forward (mixed precision on GPUs), loss, backward, clip, update.

        Returns the loss and the number of correct predictions as device tensors: reading them
        here with ``.item()`` would make the CPU wait for the GPU at every step.
        """
        with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                            enabled=self.amp_dtype is not None):
            logits = self.forward_model(self._prepare(X))
        loss = F.cross_entropy(logits.float(), y, label_smoothing=self.recipe.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.recipe.clip_grad_norm:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.recipe.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss.detach(), (logits.argmax(1) == y).sum()

    @torch.no_grad()
    def evaluate(self, limit: int | None = None) -> dict:
        """Test loss and accuracy (on at most ``limit`` test images; quick mode caps it)."""
        if self.quick:
            limit = min(limit or QUICK["eval_examples"], QUICK["eval_examples"])
        was_training = self.model.training
        self.model.eval()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        n = 0
        try:
            for X, y in self.data.test_batches(batch_size=max(self.batch_size, 256), limit=limit):
                with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                                    enabled=self.amp_dtype is not None):
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

        A second interrupt while stopping raises ``KeyboardInterrupt`` as usual.
        """
        self._stop = False
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            if self._stop:
                raise KeyboardInterrupt
            self._stop = True

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def fit(self, epochs: int | None = None) -> None:
        """Train for ``epochs`` more epochs (default: the recipe's); results go to ``history``.

        Called without ``epochs`` after an interruption, it finishes the interrupted plan: the
        same batches in the same order from the step where it stopped, on the same schedule.
        """
        if epochs is not None or self._plan is None or self._plan["done"]:
            epochs = self.recipe.epochs if epochs is None else epochs
            if self.quick:
                epochs = min(epochs, QUICK["epochs"])
            steps = len(self.data.train_batches(epoch=0, rank=self.rank, world_size=self.world_size,
                                                batch_size=self.batch_size))
            if self.quick:
                steps = min(steps, QUICK["steps"])
            self._plan = {"start": self.epoch, "end": self.epoch + epochs, "steps": steps,
                          "step": 0, "done": False}
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
            # second Ctrl-C): stop here; the model, the history and the position are kept.
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
            if progress is not None:
                progress.close()

    def _run_epoch(self, plan: dict, progress) -> dict:
        epoch = self.epoch
        step_in_epoch = plan["step"] - (epoch - plan["start"]) * plan["steps"]
        batches = self.data.train_batches(epoch=epoch, start=step_in_epoch, rank=self.rank,
                                          world_size=self.world_size, batch_size=self.batch_size)
        total_steps = (plan["end"] - plan["start"]) * plan["steps"]
        self.model.train()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        seen, start, lr = 0, time.perf_counter(), None
        try:
            for X, y in batches:
                if step_in_epoch >= plan["steps"]:
                    break
                lr = self.lr_at(plan["step"], total_steps)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                loss, right = self.train_step(X, y)
                loss_sum += loss * len(y)
                correct += right
                seen += len(y)
                plan["step"] += 1
                step_in_epoch += 1
                if progress is not None:
                    progress.step(epoch, step_in_epoch / plan["steps"], loss_sum, correct, seen)
                if self._stop:
                    break
        except KeyboardInterrupt:
            # A raw KeyboardInterrupt (no handler of ours: outside the main thread, or a second
            # Ctrl-C): stop now and still record the partial epoch. A step cut short is not
            # counted, so fit() redoes it (its update may have been applied already).
            self._stop = True
        train_seconds = time.perf_counter() - start
        record = {"epoch": epoch + 1,
                  "train_loss": loss_sum.item() / seen if seen else None,
                  "train_acc": correct.item() / seen if seen else None,
                  "lr": lr,
                  "examples_per_s": seen * self.world_size / max(train_seconds, 1e-9),
                  "device": str(self.device), "quick": self.quick}
        interrupted = self._stop and step_in_epoch < plan["steps"]
        if interrupted:
            record.update(test_loss=None, test_acc=None, seconds=train_seconds, interrupted=True,
                          steps_done=step_in_epoch)
        else:
            record.update(self.evaluate())
            record.update(seconds=time.perf_counter() - start, interrupted=False)
            self.epoch += 1
            plan["step"] = (self.epoch - plan["start"]) * plan["steps"]
            plan["done"] = self.epoch >= plan["end"]
        self.history.append(record)
        if progress is not None:
            progress.epoch_end(record)
        if not interrupted:
            for cb in self.callbacks:
                if hasattr(cb, "on_epoch_end"):
                    cb.on_epoch_end(self, record)
        return record

    # ------------------------------------------------------------------------------------------
    # Checkpoints
    # ------------------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> Path:
        """Write model, optimizer, history and recipe to ``path`` atomically.

        The file is written next to its destination and renamed over it only when complete, so
        a crash mid-write leaves the previous checkpoint intact.
        """
        path = Path(path)
        state = {"format": CHECKPOINT_FORMAT, "arch": self.name,
                 "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                 "optimizer": self.optimizer.state_dict(), "history": self.history,
                 "recipe": dataclasses.asdict(self.recipe), "epoch": self.epoch,
                 "plan": dict(self._plan) if self._plan else None}
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(state, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return path

    def load(self, path: str | os.PathLike) -> "Trainer":
        """Restore model, optimizer, history and recipe from a checkpoint written by :meth:`save`.

        A checkpoint saved after an interruption remembers where the fit stopped: ``fit()``
        after ``load`` finishes it, on the same batches and schedule.
        """
        path = Path(path)
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise CheckpointError(f"{path} is not a readable d2lcnn checkpoint ({exc})") from exc
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{path} is not a d2lcnn checkpoint (no '{CHECKPOINT_FORMAT}' marker)")
        ours, theirs = self.model.state_dict(), state["model"]
        problems = [f"{k}: {tuple(theirs[k].shape)} in the file, {tuple(ours[k].shape)} in the model"
                    for k in ours if k in theirs and theirs[k].shape != ours[k].shape]
        problems += [f"missing {k}" for k in ours if k not in theirs]
        problems += [f"unexpected {k}" for k in theirs if k not in ours]
        if problems:
            shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
            raise CheckpointError(f"{path} holds a checkpoint of {state['arch']!r}, but this model is "
                                  f"{self.name!r} and does not fit it: {shown}. Build the same "
                                  "architecture (models.build with the same name and arguments).")
        self.model.load_state_dict(theirs)
        self.recipe = Recipe(**state["recipe"])
        self.optimizer = self._make_optimizer()
        self.optimizer.load_state_dict(state["optimizer"])
        self.history = list(state["history"])
        self.epoch = int(state["epoch"])
        # An interrupted fit saved mid-epoch goes on from the same step after loading.
        plan = state.get("plan")
        self._plan = dict(plan) if plan and not plan["done"] else None
        return self


class _Progress:
    """Progress for one ``fit``: a tqdm bar and a live plot in notebooks, lines in a terminal.

    The host reads the device's running sums (a synchronisation) at most twice a second.
    """

    INTERVAL = 0.5

    def __init__(self, trainer: Trainer):
        self.trainer = trainer
        self.notebook = in_notebook()
        plan = trainer._plan
        total = (plan["end"] - plan["start"]) * plan["steps"]
        note = " (quick mode)" if trainer.quick else ""
        self.last = 0.0
        self.live: list[dict] = []
        self.bar = self.out = None
        if self.notebook:
            import ipywidgets as widgets
            from IPython.display import display
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=plan["step"], desc=f"training{note}", unit="step")
            self.out = widgets.Output()
            self.out.add_class("d2lcnn-live-plot")
            display(self.out)
        elif note:
            print(f"quick mode (D2LCNN_QUICK=1): at most {QUICK['epochs']} epoch, {QUICK['steps']} steps, "
                  f"batch {QUICK['batch_size']}, {QUICK['eval_examples']} test images", file=sys.stderr, flush=True)

    def step(self, epoch: int, fraction: float, loss_sum, correct, seen: int) -> None:
        if self.bar is None:  # a terminal prints per epoch: nothing to read mid-epoch
            return
        self.bar.update(1)
        now = time.monotonic()
        if now - self.last < self.INTERVAL:
            return
        self.last = now
        point = {"epoch": epoch + fraction, "train_loss": loss_sum.item() / seen,
                 "train_acc": correct.item() / seen}
        self.live.append(point)
        self.bar.set_postfix(epoch=epoch + 1, loss=f"{point['train_loss']:.3f}",
                             acc=f"{point['train_acc']:.3f}", refresh=False)
        self.draw()

    def epoch_end(self, record: dict) -> None:
        t = self.trainer
        if self.notebook:
            self.draw()
            return
        if record.get("interrupted"):
            print(f"epoch {record['epoch']} interrupted after {record['steps_done']} steps; "
                  "fit() continues from there", file=sys.stderr, flush=True)
            return
        def f(key):
            return "-" if record[key] is None else f"{record[key]:.3f}"

        print(f"epoch {record['epoch']:>3}/{t._plan['end']}  train loss {f('train_loss')}  "
              f"train acc {f('train_acc')}  test acc {f('test_acc')}  "
              f"{record['seconds']:.1f} s  {record['examples_per_s']:,.0f} examples/s", file=sys.stderr, flush=True)

    def draw(self) -> None:
        """Redraw the live plot in its Output."""
        if self.out is None:
            return
        from .curves import plot_history
        from .display import redraw

        history = [r for r in self.trainer.history if not r.get("interrupted")]
        redraw(self.out, lambda: plot_history(self.live + history))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
