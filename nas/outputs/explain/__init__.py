"""Explanations of trained models through Captum (``nas explain``), with sanity checks of each method, and SHAP
values of a surrogate of the search's score over its decisions (the report's "Which choices mattered")."""

from nas.outputs.explain.attribution import METHODS, attribute, feature_mask
from nas.outputs.explain.run import EXPLAIN_DIR, INDEX, ExplainResult, explain, read_index, resolve_source
from nas.outputs.explain.sanity import (
    Faithfulness,
    Randomisation,
    cascading_randomisation,
    deletion_insertion,
    randomisation_check,
    randomised_copy,
)

__all__ = ["METHODS", "attribute", "feature_mask", "EXPLAIN_DIR", "INDEX", "ExplainResult", "explain", "read_index",
           "resolve_source", "Faithfulness", "Randomisation", "deletion_insertion", "randomisation_check",
           "randomised_copy", "cascading_randomisation"]
