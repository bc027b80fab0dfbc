"""KTRDR training host: runs the TrainingExecutor behind the TrainingHost gRPC service."""
