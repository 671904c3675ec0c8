"""``module`` templates: building, dry runs and prediction batch sizes (the estimators'
:class:`TemplateMixin`)."""

import copy
import inspect

import numpy as np
import torch

from .nn._templates import WEIGHT_LAYERS

PREDICT_BATCH_SIZE = 8192
# Rows of a prediction batch are capped so that a densified batch of sparse input holds at
# most this many values (32 MiB in float64), whatever the number of features.
PREDICT_MAX_VALUES = 1 << 22


class TemplateMixin:
    """The ``module`` template built and checked, the network checked on a dry run, and the
    rows a prediction batch may hold."""

    def _template(self, n_features, n_outputs, generator):
        """The ``module`` template, built, checked on a dry run and initialised from
        ``generator``.

        A class is built under a seeded random state, so its own initialisation is kept;
        an instance is copied and its parameters reset (innermost modules first).
        """
        shape = self._input_shape
        if shape is not None and int(np.prod(shape)) != n_features:
            raise ValueError(f"input_shape {shape} holds {int(np.prod(shape))} values, but "
                             f"X has {n_features} features.")
        template = self.module
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if isinstance(template, torch.nn.Module):
                template = copy.deepcopy(template)
                built = False
            else:
                template = self._instantiate_template(template, n_outputs)
                built = True
            name = type(template).__name__
            example = torch.zeros(2, *(shape or (n_features,)))
            layers = [m for m in template.modules() if isinstance(m, WEIGHT_LAYERS)]
            calls = []
            hooks = [layer.register_forward_hook(lambda m, i, o: calls.append(m))
                     for layer in layers]
            outputs = []
            for dtype in (torch.float32, torch.float64):  # training, then prediction
                module = template if dtype == torch.float32 else copy.deepcopy(template)
                try:
                    with torch.no_grad():  # also initialises lazy layers
                        outputs.append(module.to(dtype).eval()(example.to(dtype)))
                except Exception as exc:
                    raise ValueError(
                        f"module {name} failed on a {dtype} batch of shape "
                        f"{tuple(example.shape)} ({type(exc).__name__}: {exc}); check "
                        f"input_shape{' and that forward keeps the input dtype (prediction runs in float64 on the CPU)' if outputs else ''}."
                    ) from None
            for hook in hooks:
                hook.remove()
            if not built:
                for layer in reversed(list(template.modules())):
                    if hasattr(layer, "reset_parameters"):
                        layer.reset_parameters()
        template.train()
        output = outputs[0]
        if not (isinstance(output, torch.Tensor) and tuple(output.shape) == (2, n_outputs)):
            got = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output)
            raise ValueError(
                f"module {name} must output shape (batch, {n_outputs}) for these targets; "
                f"on a batch of 2 it gave {got}."
            )
        if not layers:
            raise ValueError(f"module {name} has no nn.Linear or nn.Conv2d layer to train.")
        order = list(dict.fromkeys(calls[:len(calls) // 2]))  # the float32 pass
        if order != layers:
            raise ValueError(
                f"module {name} must call each of its nn.Linear/nn.Conv2d layers in the "
                f"order it registers them (coefs_ follows that order, and the last one is "
                f"the output layer); {len(layers)} registered, called in the order "
                f"{[layers.index(m) for m in order]}."
            )
        return template

    def _dry_run(self, module):
        """Run the built network on two zero rows (a clear error now rather than a torch
        traceback in training); returns the values its layers hold per row, which sizes
        prediction batches."""
        leaves = [m for m in module.modules() if not list(m.children())]
        sizes = []
        hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(
            o.numel() if isinstance(o, torch.Tensor) else 0)) for m in leaves]
        try:
            with torch.no_grad():
                module.eval()(torch.zeros(2, self.n_features_in_))
        except ValueError:
            raise
        except Exception as exc:
            raise ValueError(
                f"The network built from module {type(self.module).__name__} failed on a "
                f"batch of 2 rows ({type(exc).__name__}: {exc})."
            ) from None
        finally:
            for hook in hooks:
                hook.remove()
            module.train()
        return max(self.n_features_in_, sum(sizes) // 2)

    def _prediction_rows(self, n_features):
        """Rows per prediction batch: at most PREDICT_MAX_VALUES values a batch, in the
        input (dense or densified sparse rows) or, for a template, in its layers."""
        values = max(n_features, getattr(self, "_row_values", 0))
        return max(1, min(PREDICT_BATCH_SIZE, PREDICT_MAX_VALUES // max(1, values)))

    def _instantiate_template(self, cls, n_outputs):
        """``cls(n_outputs=...)``, with ``input_shape=`` when set and ``cls`` takes it."""
        kwargs = {"n_outputs": n_outputs}
        if self._input_shape is not None:
            try:
                if "input_shape" in inspect.signature(cls).parameters:
                    kwargs["input_shape"] = self._input_shape
            except (TypeError, ValueError):  # no signature to read
                pass
        try:
            template = cls(**kwargs)
        except Exception as exc:
            hint = (" Set input_shape." if self._input_shape is None
                    and "input_shape" in str(inspect.signature(cls)) else "")
            raise ValueError(
                f"module={cls!r} could not be built as module("
                f"{', '.join(f'{k}={v!r}' for k, v in kwargs.items())}) "
                f"({type(exc).__name__}: {exc}).{hint}"
            ) from None
        if not isinstance(template, torch.nn.Module):
            raise TypeError(f"module must be a torch.nn.Module class or instance; "
                            f"{cls!r}(...) gave {type(template).__name__}.")
        return template

    def _check_batch_norms(self, module):
        """Batch norms need two samples a batch: the one check of ``batch_size >= 2``, for
        every network with batch normalisation (the weight-free and random networks', a
        template's), at each fit."""
        if self.batch_size < 2 and any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                                       for m in module.modules()):
            raise ValueError(f"The network has batch normalisation, which needs "
                             f"batch_size >= 2; got batch_size={self.batch_size}.")
