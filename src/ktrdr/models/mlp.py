"""The strategy's neural network: an MLP over fuzzy features, with a symbol embedding."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
}


@dataclass(frozen=True)
class MLPSpec:
    """Everything needed to rebuild the network (stored in the bundle's metadata)."""

    n_features: int
    hidden_layers: tuple[int, ...]
    activation: str
    dropout: float
    n_classes: int = 3
    n_symbols: int = 1
    embedding_dim: int = 0

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["hidden_layers"] = list(self.hidden_layers)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> MLPSpec:
        return cls(
            n_features=int(data["n_features"]),  # type: ignore[call-overload]
            hidden_layers=tuple(int(h) for h in data["hidden_layers"]),  # type: ignore[attr-defined]
            activation=str(data["activation"]),
            dropout=float(data["dropout"]),  # type: ignore[arg-type]
            n_classes=int(data.get("n_classes", 3)),  # type: ignore[call-overload]
            n_symbols=int(data.get("n_symbols", 1)),  # type: ignore[call-overload]
            embedding_dim=int(data.get("embedding_dim", 0)),  # type: ignore[call-overload]
        )


def embedding_dim_for(n_symbols: int) -> int:
    """No embedding for a single symbol; a small one (2..8) for several."""
    return 0 if n_symbols <= 1 else min(8, max(2, n_symbols))


class MLPClassifier(nn.Module):
    """Features (plus the row's symbol embedding) -> hidden layers -> class logits."""

    def __init__(self, spec: MLPSpec) -> None:
        super().__init__()
        self.spec = spec
        self.symbol_embedding: nn.Embedding | None = (
            nn.Embedding(spec.n_symbols, spec.embedding_dim) if spec.embedding_dim > 0 else None
        )
        layers: list[nn.Module] = []
        width = spec.n_features + spec.embedding_dim
        for hidden in spec.hidden_layers:
            layers += [nn.Linear(width, hidden), ACTIVATIONS[spec.activation]()]
            if spec.dropout > 0:
                layers.append(nn.Dropout(spec.dropout))
            width = hidden
        layers.append(nn.Linear(width, spec.n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, symbol_idx: torch.Tensor | None = None) -> torch.Tensor:
        if self.symbol_embedding is not None:
            if symbol_idx is None:
                raise ValueError("this model was trained on several symbols: pass symbol_idx")
            x = torch.cat([x, self.symbol_embedding(symbol_idx)], dim=1)
        return self.net(x)
