"""Reading input files safely: ``.npy`` arrays only, never pickles, validated with readable errors."""

from driftcal.io.arrays import (
    load_array,
    load_groups,
    validate_array,
    validate_groups,
    validate_pair,
    validate_truth,
)

__all__ = [
    "load_array",
    "load_groups",
    "validate_array",
    "validate_groups",
    "validate_pair",
    "validate_truth",
]
