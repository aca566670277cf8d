"""Monthly cost model of a stack's resources (see model.estimate), its levers (advice.advise) and
the cost of a change between two estimates (compare.compare)."""

from .advice import advise
from .compare import compare
from .model import DEFAULT_USAGE, CostEstimate, CostItem, Lever, estimate, load_prices

__all__ = [
    "DEFAULT_USAGE",
    "CostEstimate",
    "CostItem",
    "Lever",
    "advise",
    "compare",
    "estimate",
    "load_prices",
]
