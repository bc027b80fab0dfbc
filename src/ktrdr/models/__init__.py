"""Neural network models."""

from ktrdr.models.mlp import ACTIVATIONS, MLPClassifier, MLPSpec, embedding_dim_for

__all__ = ["ACTIVATIONS", "MLPClassifier", "MLPSpec", "embedding_dim_for"]
