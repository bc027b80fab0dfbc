"""Permutation importance on a bounded, seeded sample of the test rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import nn

    from ktrdr.training.trainer import Tensors


def fixed_model() -> nn.Module:
    """Feature 0 decides the class, feature 1 a little, feature 2 not at all."""
    import torch
    from torch import nn

    class Fixed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(3, 2)
            with torch.no_grad():
                self.linear.weight.copy_(torch.tensor([[-4.0, -0.5, 0.0], [4.0, 0.5, 0.0]]))
                self.linear.bias.zero_()

        def forward(self, x: torch.Tensor, symbol_idx: torch.Tensor) -> torch.Tensor:
            return self.linear(x)

    return Fixed()


def split(rows: int) -> tuple[nn.Module, Tensors]:
    """``rows`` test rows whose class is the sign of feature 0, and the fixed model."""
    import torch

    from ktrdr.training.trainer import Tensors

    gen = torch.Generator().manual_seed(1)
    x = torch.randn(rows, 3, generator=gen)
    y = (x[:, 0] > 0).long()
    return fixed_model(), Tensors(x, y, torch.zeros(rows, dtype=torch.long))


def run(model: nn.Module, test: Tensors, **kwargs: int) -> list[dict[str, object]]:
    from torch import nn

    from ktrdr.training.evaluation import permutation_importance

    return permutation_importance(
        model, test, nn.CrossEntropyLoss(), ["a", "b", "noise"], seed=5, repeats=2, **kwargs
    )


def test_a_large_split_is_sampled_and_ranks_like_all_rows() -> None:
    model, test = split(6000)
    every = run(model, test, max_rows=0)  # 0: no bound
    sampled = run(model, test, max_rows=1000)
    assert [r["feature"] for r in sampled] == [r["feature"] for r in every] == ["a", "b", "noise"]
    assert sampled != every  # it did not shuffle all 6000 rows
    assert run(model, test, max_rows=1000) == sampled  # the same sample every time


def test_a_split_within_the_bound_is_used_whole() -> None:
    model, test = split(500)
    assert run(model, test, max_rows=500) == run(model, test, max_rows=0)
