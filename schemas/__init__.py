"""marshmallow schemas, one module per area, on the project base Schema."""

from .base import ErrorSchema, Schema

__all__ = ["ErrorSchema", "Schema"]
