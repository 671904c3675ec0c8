"""The skorch net an estimator trains: its construction, callbacks, continuing-fit
update and device errors (the estimators' :class:`NetMixin`)."""

import copy
from contextlib import contextmanager

import torch
from skorch.callbacks import EarlyStopping, LRScheduler

from ._params import named_callback
from ._training import CosineLR, EpochLog, EpochProgressBar, ResidentNetMixin, print_line

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
}
_FUSED_ADAM = tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2]) >= (2, 4)


def _no_output(*args, **kwargs):
    """A picklable sink that drops skorch's messages (progress is the bar's job)."""


class NetMixin:
    """The estimator's skorch net (``net_``): built from the hyper-parameters, given the
    package's callbacks, updated for a continuing fit."""

    def _update_net(self):
        """Apply the parameters a continuing fit may change to the existing net."""
        net = self.net_
        net.set_params(lr=self.lr, batch_size=self.batch_size, max_epochs=self.max_epochs,
                       callbacks=self._callbacks(), **self._net_options())
        net.initialize_callbacks()  # set_params initialises them before it sets the list
        # skorch's set_params re-initialises a component for a "__" parameter, and has no
        # component to re-initialise for the iterator's: set as __init__ stores it
        net.iterator_train__shuffle = self.shuffle
        for group in net.optimizer_.param_groups:
            group["lr"] = self.lr
        self._update_search()
        self._fit_params = self._params_snapshot()

    def _make_net(self, module, device, shuffle_generator):
        if self.optimizer == "sgd":
            optimizer_params = {"momentum": self.momentum,
                                "nesterov": self.nesterovs_momentum and self.momentum > 0}
        else:
            optimizer_params = {"betas": (self.beta_1, self.beta_2)}
            if _FUSED_ADAM and device.type in ("cpu", "cuda"):
                optimizer_params["fused"] = True  # one kernel for the whole update
        return self._net_class(
            module=module,
            criterion=self._criterion(),
            criterion__reduction="none",
            optimizer=OPTIMIZERS[self.optimizer],
            **{f"optimizer__{k}": v for k, v in optimizer_params.items()},
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            iterator_train__shuffle=self.shuffle,
            device=device,
            train_split=None,
            callbacks=self._callbacks(),
            predict_nonlinearity=self._predict_nonlinearity(),
            shuffle_generator=shuffle_generator,
            **self._net_options(),
        )

    def _net_options(self):
        """The net's parameters that follow the estimator's: the L2 penalty, the training
        forward pass (bf16 autocast, torch.compile) and skorch's messages."""
        return {"alpha": self.alpha,
                "autocast_dtype": torch.bfloat16 if self.precision == "bfloat16" else None,
                "use_torch_compile": self.torch_compile,
                # skorch's own messages (the stopping rule's, re-initialisations) with the log
                "verbose": int(self.verbose >= 2),
                # skorch's per-batch history rows, for the user's callbacks that read them
                "batch_history": bool(self.callbacks)}

    # The names of the package's own callbacks (the net's defaults and _callbacks whatever
    # the options); a family's _extra_callbacks add theirs.
    _INTERNAL_CALLBACKS = frozenset(
        {*ResidentNetMixin.DEFAULT_CALLBACKS, "epoch_log", "stopping", "lr_schedule",
         "progress"})

    def _check_callbacks(self):
        """Raise ``ValueError`` when a callback of ``callbacks`` takes the name of one of
        the package's own or of another given callback, or is an ``LRScheduler`` beside
        ``lr_schedule="cosine"`` (both would set the learning rate)."""
        named = [named_callback(item) for item in self.callbacks or ()]
        reserved = self._INTERNAL_CALLBACKS | {name for name, _ in self._extra_callbacks()}
        taken = sorted({name for name, _ in named} & reserved)
        if taken:
            raise ValueError(
                f"callbacks: the name{'s' if len(taken) > 1 else ''} {', '.join(taken)} "
                f"{'are' if len(taken) > 1 else 'is'} taken by {type(self).__name__}'s own "
                f"callbacks ({', '.join(sorted(reserved))}); give yours another name with a "
                f"(name, callback) pair.")
        # skorch numbers unnamed callbacks of one class (Checkpoint_1, Checkpoint_2); a
        # name given in a pair must be unique
        given = [item[0] for item in self.callbacks or () if isinstance(item, (tuple, list))]
        names = [name for name, _ in named]
        duplicates = sorted({name for name in given if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"callbacks: more than one callback is named "
                             f"{', '.join(duplicates)}; names must be unique.")
        if self.lr_schedule == "cosine" and any(isinstance(cb, LRScheduler)
                                                for _, cb in named):
            raise ValueError(
                "callbacks: an LRScheduler sets the learning rate, and so does "
                "lr_schedule='cosine'; use lr_schedule='constant' (the default) to let the "
                "LRScheduler schedule it.")

    def _user_callbacks(self):
        """The ``callbacks`` parameter for one fit: each callback a shallow copy, which
        the net initialises (its state), so that the parameter is left as it was; the
        copy shares the callback's parameters (a writer, a client) with it."""
        # an unnamed one stays unnamed: skorch names it after its class, and numbers
        # several of one class
        return [(item[0], copy.copy(item[1])) if isinstance(item, (tuple, list))
                else copy.copy(item) for item in self.callbacks or ()]

    def _callbacks(self):
        log = self.verbose >= 2  # a line per epoch and the stopping rule's messages
        callbacks = [("epoch_log", EpochLog())] if log else []
        # before the stopping rule, whose KeyboardInterrupt ends the last epoch's hooks
        callbacks += self._user_callbacks()
        callbacks.append(
            ("stopping", EarlyStopping(
                monitor="valid_score" if self.early_stopping else "train_loss",
                lower_is_better=not self.early_stopping,
                patience=self.n_iter_no_change, threshold=self.tol, threshold_mode="abs",
                load_best=self.early_stopping, sink=print_line if log else _no_output,
            )))
        if self.lr_schedule == "cosine":
            callbacks.append(("lr_schedule", CosineLR()))
        callbacks += self._extra_callbacks()
        if self.verbose and not log:
            callbacks.append(("progress", EpochProgressBar(desc=type(self).__name__)))
        return callbacks

    @contextmanager
    def _device_errors(self):
        """Re-raise a device out-of-memory error as a ``MemoryError`` with advice."""
        try:
            yield
        except (torch.OutOfMemoryError, RuntimeError) as exc:
            if not isinstance(exc, torch.OutOfMemoryError) and "out of memory" not in str(exc):
                raise  # MPS reports exhaustion as a plain RuntimeError
            raise MemoryError(
                f"{type(self).__name__} ran out of memory on device {self.device!r} ({exc}). "
                f"Try a smaller batch_size or hidden_layer_sizes, or device='cpu'."
            ) from None
