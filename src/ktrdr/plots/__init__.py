"""Plots of a trained model: training curves and the test confusion matrix."""

from ktrdr.plots.training import (
    plot_accuracy,
    plot_confusion_matrix,
    plot_loss,
    save_training_plot,
    training_figure,
)

__all__ = [
    "plot_accuracy",
    "plot_confusion_matrix",
    "plot_loss",
    "save_training_plot",
    "training_figure",
]
