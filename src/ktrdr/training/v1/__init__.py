"""Generated protobuf and gRPC code of the ktrdr.training.v1 contract.

Do not edit: regenerate with ``make protos`` (scripts/gen_protos.py) from
protos/ktrdr/training/v1/*.proto. Importing these modules must never import PyTorch.
"""
