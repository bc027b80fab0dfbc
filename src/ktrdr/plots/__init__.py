"""Plots of a trained model: training curves, the test confusion matrix and equity curve."""

from ktrdr.plots.training import (
    plot_accuracy,
    plot_confusion_matrix,
    plot_equity,
    plot_loss,
    plot_walk_forward_equity,
    save_training_plot,
    training_figure,
)

__all__ = [
    "plot_accuracy",
    "plot_confusion_matrix",
    "plot_equity",
    "plot_loss",
    "plot_walk_forward_equity",
    "save_training_plot",
    "training_figure",
]
