"""The torch side of the prediction formula: a fitted torch network read into a
:class:`~sk_weightfree._inference.Chain`, and a chain written back as plain torch layers.

:func:`chain_from_estimator` gives the chain of any fitted estimator: multilayer networks
from their public arrays, networks fitted from a ``module`` template by tracing the plain
torch network with ``torch.fx``. :func:`chain_module` is the torch form of a chain (what
:func:`sk_weightfree.io.to_onnx` exports). Runs only where torch is: on the side that fits,
dumps or exports, never at :func:`sk_weightfree.io.load`.
"""

import math
import operator

import numpy as np
import torch
from torch import fx, nn
from torch.nn import functional as F

from ._inference import (Activation, Affine, Chain, Conv2d, Linear, Paired, Pool2d, Reshape,
                         _prod, merge_affines)
from .nn import ACTIVATIONS
from .nn._layers import pruned_weight
from .nn._networks import TORCH_ACTIVATIONS

# What a traced template's activations are called in a chain: modules, torch functions and
# tensor methods, read from the one torch table (an nn.Identity is dropped before, as a no-op).
_MODULE_ACTIVATIONS = {act.module: name for name, act in TORCH_ACTIVATIONS.items()}
_FUNCTION_ACTIVATIONS = {function: name for name, act in TORCH_ACTIVATIONS.items()
                         for function in act.functions}
_METHOD_ACTIVATIONS = {act.method: name for name, act in TORCH_ACTIVATIONS.items()
                       if act.method}


class NotAChainError(ValueError):
    """A fitted network that a :class:`Chain` cannot hold (the message names the piece)."""


def chain_from_estimator(est):
    """The :class:`Chain` a fitted estimator predicts with, or :class:`NotAChainError`
    naming the piece of its network a chain cannot hold (a template that is not a
    chain)."""
    chain = getattr(est, "_chain", None)
    if chain is None:
        chain = chain_from_template(est)  # raises why
    return chain


def _refuse(est, piece, why):
    raise NotAChainError(
        f"This {type(est).__name__}'s network (module={_module_name(est.module)}) cannot be "
        f"written as a chain of supported layers: {piece} {why}. The compact file and the "
        f"ONNX export handle templates whose forward is a chain of Linear, Conv2d "
        f"(groups=1, zero padding), BatchNorm1d/2d, ReLU/Tanh/Sigmoid/Identity, "
        f"MaxPool2d/AvgPool2d (no padding, ceil_mode=False), Flatten/reshape and Dropout; "
        f"pickle the estimator instead."
    )


def _module_name(module):
    if hasattr(module, "func"):  # functools.partial
        module = module.func
    return getattr(module, "__name__", type(module).__name__)


def plain_template_module(est):
    """The fitted template network as plain torch layers, on the CPU in float64, eval mode:
    ``TemplateNetwork.to_module()`` (the reshape, then the body; {0,1} units as
    ``PairedInput -> Conv2d/Linear -> batch norm``). Refuses weight-agnostic networks."""
    from .nn import SharedWeightTemplate, TemplateNetwork

    module = est.net_.module_
    if isinstance(module, SharedWeightTemplate):
        raise NotAChainError(
            f"This {type(est).__name__} was fitted with a module template "
            f"(module={_module_name(est.module)}); weight-agnostic template networks "
            f"(SharedWeightUnit layers evaluated at a shared weight value, with bias nodes) "
            f"are not supported by the compact file or the ONNX export. Pickle the "
            f"estimator instead."
        )
    if not isinstance(module, TemplateNetwork):
        raise NotAChainError(f"This {type(est).__name__} has a {type(module).__name__} network, "
                         f"not a TemplateNetwork; it cannot be exported.")
    plain = module.to_module().to(device="cpu", dtype=torch.float64).eval()
    return plain


def chain_from_template(est):
    """The :class:`Chain` of a fitted estimator with a ``module`` template (dense, pruned,
    weight-free and random families).

    The plain torch network (:func:`plain_template_module`) is traced with
    ``torch.fx``; its graph must be a chain (each operation takes the previous one's
    output alone) of supported layers. Anything else raises :class:`NotAChainError`
    naming the piece. ``tests/test_tracing.py`` checks the reading of every supported
    layer against torch.
    """
    plain = plain_template_module(est)
    ops = _trace_chain(est, plain)
    n_features = int(est.n_features_in_)
    n_last = Chain(members=[ops], n_features_in=n_features,
                   out_activation="identity").shapes()[-1][0]
    is_classifier = hasattr(est, "classes_")
    if is_classifier and n_last != len(est.classes_):
        _refuse(est, "the output", f"has {n_last} values for {len(est.classes_)} classes")
    target = target_affine(est)
    if target is not None:  # regressors: outputs are mapped back to y's scale
        ops = ops + [target]
    return Chain(members=[merge_affines(ops)], n_features_in=n_features,
                 out_activation=est.out_activation_,
                 classes=np.asarray(est.classes_) if is_classifier else None,
                 n_outputs=int(getattr(est, "n_outputs_", n_last)),
                 estimator=type(est).__name__)


def target_affine(est):
    """A regressor's map from the network's standardised outputs to ``y``'s units, as an
    :class:`Affine` (None for classifiers)."""
    if not hasattr(est, "_target_scale"):
        return None
    n = int(est.n_outputs_)
    return Affine(np.broadcast_to(np.asarray(est._target_scale, dtype=np.float64), (n,)),
                  np.broadcast_to(np.asarray(est._target_mean, dtype=np.float64), (n,)))


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _trace_chain(est, plain):
    """The ops of ``plain``'s fx graph, which must be a chain of supported operations."""
    from .nn import PairedInput

    class Tracer(fx.Tracer):
        def is_leaf_module(self, m, qualified_name):
            return isinstance(m, PairedInput) or super().is_leaf_module(m, qualified_name)

    try:
        graph = Tracer().trace(plain)
    except Exception as exc:
        _refuse(est, "its forward", f"cannot be traced by torch.fx ({type(exc).__name__}: "
                                    f"{exc})")
    shape = (int(est.n_features_in_),)
    ops = []
    current = None
    sizes = {}  # nodes that hold sizes: the batch size "N", or a tuple of sizes

    body_prefix = f"{len(plain) - 1}."  # to_module(): [Unflatten,] then the template's body

    def where(node):
        if node.op == "call_module":
            name = node.target
            name = name[len(body_prefix):] if name.startswith(body_prefix) else name
            return f"{type(plain.get_submodule(node.target)).__name__} ({name})"
        if node.op == "call_method":
            return f"the tensor method .{node.target}()"
        if node.op == "call_function":
            return f"{getattr(node.target, '__module__', '') or ''}." \
                   f"{getattr(node.target, '__name__', node.target)}".lstrip(".")
        return f"{node.op} {node.target}"

    def nodes_in(value):
        if isinstance(value, fx.Node):
            return [value]
        if isinstance(value, (list, tuple)):
            return [n for v in value for n in nodes_in(v)]
        if isinstance(value, dict):
            return [n for v in value.values() for n in nodes_in(v)]
        return []

    def bind(node, names, defaults):
        """Positional and keyword arguments after the input, by name."""
        values = dict(defaults)
        values.update(zip(names, node.args[1:]))
        values.update(node.kwargs)
        return values

    def reshape_to(node, target):
        full = (None, *shape)
        if not (isinstance(target, tuple) and target and target[0] in ("N", -1)):
            _refuse(est, where(node), "reshapes across the batch axis (the first size must "
                                      "be the batch size or -1)")
        rest = list(target[1:])
        if any(not isinstance(s, int) for s in rest) or rest.count(-1) > 1:
            _refuse(est, where(node), f"reshapes to sizes {target} that are not plain "
                                      f"integers")
        total = _prod(full[1:])
        if -1 in rest:
            known = _prod(s for s in rest if s != -1)
            if known == 0 or total % known:
                _refuse(est, where(node), f"cannot reshape {shape} to {target}")
            rest[rest.index(-1)] = total // known
        if target[0] == -1 and _prod(rest) != total:
            _refuse(est, where(node), f"cannot reshape {shape} to {target} per sample")
        return Reshape(rest)

    def flatten(node, start, end):
        ndim = len(shape) + 1
        start, end = start % ndim, end % ndim
        if start < 1:
            _refuse(est, where(node), "flattens the batch axis (start_dim must be 1 or more)")
        full = (None, *shape)
        return Reshape(full[1:start] + (_prod(full[start:end + 1]),) + full[end + 1:])

    def convert_module(node, m):
        if isinstance(m, nn.Unflatten):
            ndim = len(shape) + 1
            dim = m.dim % ndim
            if dim < 1:
                _refuse(est, where(node), "unflattens the batch axis")
            return [reshape_to(node, ("N", *shape[:dim - 1], *m.unflattened_size,
                                      *shape[dim:]))]
        if isinstance(m, nn.Flatten):
            return [flatten(node, m.start_dim, m.end_dim)]
        if isinstance(m, PairedInput):
            if m.dim % (len(shape) + 1) != 1:
                _refuse(est, where(node), f"pairs axis {m.dim}; only axis 1 (features or "
                                          f"channels) is supported")
            return [Paired()]
        if type(m) in (nn.Linear, nn.Conv2d):
            weight = pruned_weight(m).applied().detach().double().numpy().copy()
            if isinstance(m, nn.Conv2d):
                if m.groups != 1 or m.padding_mode != "zeros":
                    _refuse(est, where(node), f"has groups={m.groups}, padding_mode="
                                              f"{m.padding_mode!r} (only groups=1 with zero "
                                              f"padding)")
                kh, kw = weight.shape[2:]
                dilation = _pair(m.dilation)
                if m.padding == "valid":
                    padding = ((0, 0), (0, 0))
                elif m.padding == "same":
                    padding = tuple((d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2)
                                    for d, k in zip(dilation, (kh, kw)))
                else:
                    padding = tuple((int(p), int(p)) for p in _pair(m.padding))
                op = Conv2d(weight, _pair(m.stride), padding, dilation)
            else:
                op = Linear(weight)
            bias = None if m.bias is None else m.bias.detach().double().numpy().copy()
            return [op, Affine(None, bias)]
        if type(m) in (nn.BatchNorm1d, nn.BatchNorm2d):
            if m.training or m.running_mean is None or m.running_var is None:
                _refuse(est, where(node), "normalises with batch statistics (no running "
                                          "statistics)")
            from .nn._layers import batch_norm_affine

            scale, offset = batch_norm_affine(m)
            return [Affine(scale.numpy().copy(), offset.numpy().copy())]
        if type(m) in (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout,
                       nn.FeatureAlphaDropout):
            return []  # identity at inference (the network is in eval mode)
        if type(m) in _MODULE_ACTIVATIONS:
            return [Activation(_MODULE_ACTIVATIONS[type(m)])]
        if type(m) in (nn.MaxPool2d, nn.AvgPool2d):
            mode = "max" if isinstance(m, nn.MaxPool2d) else "avg"
            options = dict(padding=m.padding, ceil_mode=m.ceil_mode,
                           dilation=getattr(m, "dilation", 1),
                           return_indices=getattr(m, "return_indices", False),
                           divisor_override=getattr(m, "divisor_override", None))
            return [pool(node, mode, m.kernel_size, m.stride, options)]
        _refuse(est, where(node), "is not a supported layer")

    def pool(node, mode, kernel, stride, options):
        kernel = _pair(kernel)
        stride = _pair(stride) if stride not in (None, (), []) else kernel
        if (any(_pair(options.get("padding", 0))) or options.get("ceil_mode")
                or _pair(options.get("dilation", 1)) != (1, 1)
                or options.get("return_indices") or options.get("divisor_override")):
            _refuse(est, where(node), f"uses options {options} (only padding=0, dilation=1, "
                                      f"ceil_mode=False are supported)")
        return Pool2d(mode, kernel, stride)

    dropouts = (F.dropout, F.dropout1d, F.dropout2d, F.alpha_dropout,
                F.feature_alpha_dropout)

    def convert_function(node):
        target = node.target
        if target in _FUNCTION_ACTIVATIONS:
            return [Activation(_FUNCTION_ACTIVATIONS[target])]
        if target in dropouts:
            if bind(node, ("p", "training"), {"training": True}).get("training"):
                _refuse(est, where(node), "drops units at inference (training=True)")
            return []
        if target is torch.flatten:
            options = bind(node, ("start_dim", "end_dim"), {"start_dim": 0, "end_dim": -1})
            return [flatten(node, options["start_dim"], options["end_dim"])]
        if target in (torch.reshape,):
            return [reshape_to(node, resolve(node.args[1]))]
        if target in (F.max_pool2d, F.avg_pool2d):
            mode = "max" if target is F.max_pool2d else "avg"
            names = (("kernel_size", "stride", "padding", "dilation", "ceil_mode",
                      "return_indices") if mode == "max" else
                     ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                      "divisor_override"))
            options = bind(node, names, {})
            return [pool(node, mode, options.pop("kernel_size"), options.pop("stride", None),
                         options)]
        _refuse(est, where(node), "is not a supported operation")

    def resolve(value):
        if isinstance(value, fx.Node):
            if value not in sizes:
                _refuse(est, where(value), "is used as a size")
            return sizes[value]
        if isinstance(value, (list, tuple)):
            return tuple(resolve(v) for v in value)
        return value

    def convert_method(node):
        name = node.target
        if name in _METHOD_ACTIVATIONS:
            return [Activation(_METHOD_ACTIVATIONS[name])]
        if name in ("contiguous",):
            return []
        if name == "flatten":
            options = bind(node, ("start_dim", "end_dim"), {"start_dim": 0, "end_dim": -1})
            return [flatten(node, options["start_dim"], options["end_dim"])]
        if name in ("view", "reshape"):
            args = node.args[1:]
            target = resolve(args[0]) if len(args) == 1 and not isinstance(args[0], int) \
                else resolve(tuple(args))
            return [reshape_to(node, target)]
        _refuse(est, where(node), "is not a supported operation")

    for node in graph.nodes:
        if node.op == "placeholder":
            if current is not None:
                _refuse(est, "its forward", "takes more than one input")
            current = node
            continue
        if node.op == "get_attr":
            _refuse(est, f"the attribute {node.target}", "is read as a tensor outside a "
                                                         "supported layer")
        # sizes: x.shape, x.size(), x.size(0), and items of those
        if node.op == "call_method" and node.target == "size" and node.args[0] is current:
            full = ("N", *shape)
            sizes[node] = full[node.args[1]] if len(node.args) > 1 else full
            continue
        if node.op == "call_function" and node.target is getattr and node.args[0] is current \
                and node.args[1] == "shape":
            sizes[node] = ("N", *shape)
            continue
        if node.op == "call_function" and node.target is operator.getitem \
                and node.args[0] in sizes:
            sizes[node] = sizes[node.args[0]][node.args[1]]
            continue
        if node.op == "output":
            if nodes_in(node.args) != [current]:
                _refuse(est, "its output", "is not the last operation's result alone")
            break
        inputs = [n for n in nodes_in((node.args, node.kwargs)) if n not in sizes]
        if inputs != [current] or node.args[:1] != (current,):
            _refuse(est, where(node), "does not take the previous operation's output alone "
                                      "(the network is not a chain: a residual connection, "
                                      "a concatenation or a second input)")
        if node.op == "call_module":
            new = convert_module(node, plain.get_submodule(node.target))
        elif node.op == "call_function":
            new = convert_function(node)
        else:
            new = convert_method(node)
        for op in new:
            try:
                shape = tuple(op.out_shape(shape))
            except ValueError as exc:
                _refuse(est, where(node), f"does not fit its input ({exc})")
            ops.append(op)
        current = node
    return ops


# ---------------------------------------------------------------------------- chain -> torch
class _Reshape(nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x):
        return x.reshape(-1, *self.shape)


class _Affine(nn.Module):
    """``x * scale + offset`` along axis 1 (units or channels)."""

    def __init__(self, op, ndim):
        super().__init__()
        trailing = (1,) * (ndim - 1)
        for name in ("scale", "offset"):
            values = getattr(op, name)
            self.register_buffer(name, None if values is None else torch.tensor(
                values, dtype=torch.float64).reshape(-1, *trailing))

    def forward(self, x):
        if self.scale is not None:
            x = x * self.scale
        if self.offset is not None:
            x = x + self.offset
        return x


class Head(nn.Module):
    """The head rules of :mod:`sk_weightfree._inference` in torch (for ``to_module()``
    and ONNX): the members' outputs (stacked on a leading axis) combined as
    :func:`~sk_weightfree._inference.combine_members` does, then, with ``target``, mapped
    to ``y``'s units. Its output is the network's ``z``, what the estimator's
    ``decision_function`` and ``predict`` are computed from.

    With ``labels=True`` a classifier's ``(decision, probabilities)`` instead: the index
    of the predicted class (int64, shape (n_samples,)) or the multilabel indicator matrix
    (int64), decided on ``z`` as ``predict`` decides, and the probabilities.
    """

    def __init__(self, out_activation, target=None, labels=False):
        super().__init__()
        self.out_activation = out_activation
        self.labels = labels
        self.target = None if target is None else _Affine(target, 1)

    def forward(self, z):
        if z.dim() == 3:
            if self.out_activation == "softmax":
                z = torch.logsumexp(torch.log_softmax(z, dim=-1), dim=0) - math.log(len(z))
            elif self.out_activation == "logistic":
                proba = torch.sigmoid(z).mean(dim=0)
                z = torch.log(proba) - torch.log1p(-proba)
            else:
                z = z.mean(dim=0)
        if self.target is not None:
            z = self.target(z)
        if not self.labels:
            return z
        if self.out_activation == "logistic":
            return (z > 0).to(torch.int64), torch.sigmoid(z)
        return z.argmax(dim=1), torch.softmax(z, dim=1)


class _Stacked(nn.Module):
    """Every member's output, stacked on a leading axis."""

    def __init__(self, members):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x):
        return torch.stack([member(x) for member in self.members])


def _torch_op(op, shape):
    if isinstance(op, Reshape):
        return _Reshape(op.shape)
    if isinstance(op, Paired):
        from .nn import PairedInput

        return PairedInput(dim=1)
    if isinstance(op, Linear):
        layer = nn.Linear(op.weight.shape[1], op.weight.shape[0], bias=False,
                          dtype=torch.float64)
        with torch.no_grad():
            layer.weight.copy_(torch.as_tensor(op.weights))
        return layer
    if isinstance(op, Conv2d):
        out, n_in, kh, kw = op.weight.shape
        layer = nn.Conv2d(n_in, out, (kh, kw), stride=op.stride, dilation=op.dilation,
                          bias=False, dtype=torch.float64)
        with torch.no_grad():
            layer.weight.copy_(torch.as_tensor(op.weights))
        (top, bottom), (left, right) = op.padding
        if not (top or bottom or left or right):
            return layer
        return nn.Sequential(nn.ZeroPad2d((left, right, top, bottom)), layer)
    if isinstance(op, Affine):
        return _Affine(op, len(shape))
    if isinstance(op, Activation):
        return ACTIVATIONS[op.name]()
    if isinstance(op, Pool2d):
        pool = nn.MaxPool2d if op.mode == "max" else nn.AvgPool2d
        return pool(op.kernel, op.stride)
    raise TypeError(f"no torch layer for {type(op).__name__}")


def chain_module(chain, *, labels=False):
    """The chain as plain torch layers in float64, eval mode, ending with its
    :class:`Head`: the network's output ``z`` (logits in ``classes`` order, for an
    ensemble the log of the mean probability; a regressor's prediction), or with
    ``labels=True`` a classifier's ``(decision, probabilities)``.

    Parameters
    ----------
    chain : Chain
    labels : bool, default=False
        For a classifier, return ``(decision, probabilities)`` (see :class:`Head`); ignored
        for regressors.

    Returns
    -------
    module : torch.nn.Module
    """
    members = []
    for ops in chain.members:
        shapes = chain.shapes(ops)
        members.append(nn.Sequential(*(_torch_op(op, shape) for op, shape
                                       in zip(ops, shapes[1:]))))
    head = Head(chain.out_activation, labels=labels and chain.is_classifier)
    body = members[0] if len(members) == 1 else _Stacked(members)
    return nn.Sequential(body, head).eval()
