r"""Weight matrices of layers, and the two-thin-layer (factorised) forms of Linear and Conv2d.

Every prunable layer is seen as one matrix W of shape (N, M) = (out, in) (DESIGN.md):

* ``nn.Linear``: its weight, (out_features, in_features);
* ``nn.Conv2d``: the im2col view, (C_out, C_in/groups * kh * kw);
* :class:`FactorizedLinear` / :class:`FactorizedConv2d`: the product of its two factors, of rank <= k.

A rank-k factorisation W ~ U_k S_k V_k^T is stored as two thin layers, ``first`` with weight
:math:`\sqrt{S_k} V_k^T` (k x M, no bias) followed by ``second`` with weight :math:`U_k \sqrt{S_k}`
(N x k, the original bias), with no activation between them (seed paper 1's "SplittableLayers").
It stores k (N + M) numbers instead of N M, so it saves parameters, memory and multiply-adds
exactly when k (N + M) < N M. For a convolution the first factor is a k-channel convolution with
the original kernel, stride, padding and dilation, the second a 1 x 1 convolution.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "FactorizedLinear",
    "FactorizedConv2d",
    "PRUNABLE_TYPES",
    "weight_matrix",
    "matrix_shape",
    "stored_parameters",
    "factorization_saves",
    "from_factors",
    "with_matrix",
    "prunable_layers",
]


class FactorizedLinear(nn.Module):
    r"""A rank-k linear map stored as two thin ``nn.Linear`` layers: ``second(first(x))``.

    Parameters
    ----------
    in_features, out_features : int
        M and N of the represented matrix.
    rank : int
        k, the inner dimension.
    bias : bool
        Whether ``second`` has a bias.
    """

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True,
                 device=None, dtype=None) -> None:
        super().__init__()
        if rank < 1:
            raise ValueError(f"rank must be >= 1, got {rank}")
        self.in_features, self.out_features, self.rank = int(in_features), int(out_features), int(rank)
        self.first = nn.Linear(in_features, rank, bias=False, device=device, dtype=dtype)
        self.second = nn.Linear(rank, out_features, bias=bias, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.first(x))

    @property
    def bias(self) -> torch.Tensor | None:
        return self.second.bias

    def matrix(self) -> torch.Tensor:
        """The represented (out_features, in_features) matrix ``second.weight @ first.weight``."""
        return self.second.weight @ self.first.weight

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}"


class FactorizedConv2d(nn.Module):
    r"""A rank-k convolution: a k-channel ``Conv2d`` with the original geometry, then a 1 x 1 ``Conv2d``.

    Represents the (C_out, C_in kh kw) im2col matrix ``second[:, :, 0, 0] @ first.reshape(k, -1)``.
    Only ``groups == 1`` convolutions are factorised.
    """

    def __init__(self, in_channels: int, out_channels: int, rank: int, kernel_size, stride=1, padding=0,
                 dilation=1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None) -> None:
        super().__init__()
        if rank < 1:
            raise ValueError(f"rank must be >= 1, got {rank}")
        self.in_channels, self.out_channels, self.rank = int(in_channels), int(out_channels), int(rank)
        self.first = nn.Conv2d(in_channels, rank, kernel_size, stride=stride, padding=padding, dilation=dilation,
                               bias=False, padding_mode=padding_mode, device=device, dtype=dtype)
        self.second = nn.Conv2d(rank, out_channels, 1, bias=bias, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.first(x))

    @property
    def bias(self) -> torch.Tensor | None:
        return self.second.bias

    def matrix(self) -> torch.Tensor:
        """The represented (C_out, C_in kh kw) im2col matrix."""
        return self.second.weight[:, :, 0, 0] @ self.first.weight.reshape(self.rank, -1)

    def extra_repr(self) -> str:
        f = self.first
        return (f"{self.in_channels}, {self.out_channels}, rank={self.rank}, kernel_size={f.kernel_size}, "
                f"stride={f.stride}, padding={f.padding}")


PRUNABLE_TYPES = (nn.Linear, nn.Conv2d, FactorizedLinear, FactorizedConv2d)


def _check_prunable(module: nn.Module, name: str = "module") -> None:
    if not isinstance(module, PRUNABLE_TYPES):
        raise TypeError(
            f"{name} must be nn.Linear, nn.Conv2d, FactorizedLinear or FactorizedConv2d, got {type(module).__name__}"
        )


def weight_matrix(module: nn.Module) -> torch.Tensor:
    """The (N, M) = (out, in) matrix of a prunable layer (a view for Linear/Conv2d, a product for factorised ones).

    Raises
    ------
    TypeError
        ``module`` is not a prunable layer type.
    """
    _check_prunable(module)
    if isinstance(module, (FactorizedLinear, FactorizedConv2d)):
        return module.matrix()
    if isinstance(module, nn.Conv2d):
        return module.weight.reshape(module.weight.shape[0], -1)
    return module.weight


def matrix_shape(module: nn.Module) -> tuple[int, int]:
    """(N, M) of :func:`weight_matrix` without computing a product."""
    _check_prunable(module)
    if isinstance(module, FactorizedLinear):
        return module.out_features, module.in_features
    if isinstance(module, FactorizedConv2d):
        w = module.first.weight
        return module.out_channels, w.shape[1] * w.shape[2] * w.shape[3]
    if isinstance(module, nn.Conv2d):
        w = module.weight
        return w.shape[0], w.shape[1] * w.shape[2] * w.shape[3]
    return tuple(module.weight.shape)


def stored_parameters(module: nn.Module) -> int:
    """Number of weight entries the layer really stores (bias excluded): N M, or k (N + M) when factorised."""
    _check_prunable(module)
    if isinstance(module, (FactorizedLinear, FactorizedConv2d)):
        return module.first.weight.numel() + module.second.weight.numel()
    return module.weight.numel()


def factorization_saves(shape: tuple[int, int], rank: int) -> bool:
    """True when a rank-k factorisation of an (N, M) matrix stores fewer numbers: k (N + M) < N M."""
    N, M = shape
    return rank * (N + M) < N * M


def _template(module: nn.Module) -> nn.Module:
    """The dense layer whose geometry ``module`` has (itself, or ``first`` of a factorised conv)."""
    return module.first if isinstance(module, FactorizedConv2d) else module


def from_factors(module: nn.Module, left: torch.Tensor, right: torch.Tensor) -> nn.Module:
    r"""A new factorised layer with ``second.weight = left`` (N x k) and ``first.weight = right`` (k x M).

    Keeps ``module``'s bias, geometry, dtype and device; ``module`` is not changed.
    """
    _check_prunable(module)
    N, M = matrix_shape(module)
    k = left.shape[1]
    if left.shape != (N, k) or right.shape != (k, M):
        raise ValueError(f"factors must have shapes ({N}, k) and (k, {M}), got {tuple(left.shape)} and "
                         f"{tuple(right.shape)}")
    bias = module.bias
    ref = module.second.weight if isinstance(module, (FactorizedLinear, FactorizedConv2d)) else module.weight
    kw = dict(device=ref.device, dtype=ref.dtype)
    if isinstance(module, (nn.Linear, FactorizedLinear)):
        new = FactorizedLinear(M, N, k, bias=bias is not None, **kw)
        new.first.weight.data.copy_(right)
        new.second.weight.data.copy_(left)
    else:
        c = _template(module)
        if c.groups != 1:
            raise ValueError(f"only groups=1 convolutions can be factorised, got groups={c.groups}")
        new = FactorizedConv2d(c.in_channels, N, k, c.kernel_size, stride=c.stride, padding=c.padding,
                               dilation=c.dilation, bias=bias is not None, padding_mode=c.padding_mode, **kw)
        new.first.weight.data.copy_(right.reshape(new.first.weight.shape))
        new.second.weight.data.copy_(left.reshape(new.second.weight.shape))
    if bias is not None:
        new.second.bias.data.copy_(bias.detach())
    new.train(module.training)
    return new


def with_matrix(module: nn.Module, W: torch.Tensor) -> nn.Module:
    """A new dense layer of ``module``'s geometry whose matrix is W (N x M); ``module`` is not changed.

    A factorised layer comes back as the dense ``nn.Linear`` / ``nn.Conv2d`` it represents.
    """
    _check_prunable(module)
    N, M = matrix_shape(module)
    if tuple(W.shape) != (N, M):
        raise ValueError(f"W must have shape ({N}, {M}), got {tuple(W.shape)}")
    bias = module.bias
    ref = module.second.weight if isinstance(module, (FactorizedLinear, FactorizedConv2d)) else module.weight
    kw = dict(device=ref.device, dtype=ref.dtype)
    if isinstance(module, (nn.Linear, FactorizedLinear)):
        new = nn.Linear(M, N, bias=bias is not None, **kw)
        new.weight.data.copy_(W)
    else:
        c = _template(module)
        new = nn.Conv2d(c.in_channels, N, c.kernel_size, stride=c.stride, padding=c.padding, dilation=c.dilation,
                        groups=c.groups, bias=bias is not None, padding_mode=c.padding_mode, **kw)
        new.weight.data.copy_(W.reshape(new.weight.shape))
    if bias is not None:
        new.bias.data.copy_(bias.detach())
    new.train(module.training)
    return new


def prunable_layers(model: nn.Module, types: tuple = PRUNABLE_TYPES) -> list[tuple[str, nn.Module]]:
    """(qualified name, module) of every prunable layer, in registration order.

    The two halves of a factorised layer are not listed separately: the factorised layer is one entry.
    """
    out: list[tuple[str, nn.Module]] = []
    skip: set[int] = set()
    for name, m in model.named_modules():
        if id(m) in skip:
            continue
        if isinstance(m, (FactorizedLinear, FactorizedConv2d)):
            skip.update((id(m.first), id(m.second)))
        if isinstance(m, types):
            out.append((name, m))
    return out


def set_submodule(model: nn.Module, name: str, new: nn.Module) -> None:
    """Replace the submodule at dotted path ``name`` by ``new``."""
    if not name:
        raise ValueError("name must name a submodule, not the model itself")
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)
