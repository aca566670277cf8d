"""Monthly cost model of a stack's resources (see model.estimate)."""

from .model import DEFAULT_USAGE, CostEstimate, CostItem, estimate, load_prices

__all__ = ["DEFAULT_USAGE", "CostEstimate", "CostItem", "estimate", "load_prices"]
