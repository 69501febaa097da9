"""The run context (``Context``), its state store and serializers."""

from workflows.context.context import Context
from workflows.context.serializers import BaseSerializer, JsonSerializer, PickleSerializer

__all__ = ["Context", "BaseSerializer", "JsonSerializer", "PickleSerializer"]
