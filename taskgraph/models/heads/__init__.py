"""Task heads: one module per family, a typed output, plain-Python decoding."""

from taskgraph.models.heads.base import Batch, HeadOutput, HeadSpec, TaskHead
from taskgraph.models.heads.classification import SequenceClassificationHead
from taskgraph.models.heads.factory import CLASSIFIER_TASK_TYPES, build_head
from taskgraph.models.heads.masked_lm import MaskedLMHead
from taskgraph.models.heads.parsing import BiaffineParserHead, ParsePrediction
from taskgraph.models.heads.qa import QAPrediction, SpanQAHead
from taskgraph.models.heads.tagging import TokenTaggingHead
from taskgraph.models.heads.tree_decoding import is_well_formed_tree, maximum_spanning_tree

__all__ = [
    "CLASSIFIER_TASK_TYPES",
    "Batch",
    "BiaffineParserHead",
    "HeadOutput",
    "HeadSpec",
    "MaskedLMHead",
    "ParsePrediction",
    "QAPrediction",
    "SequenceClassificationHead",
    "SpanQAHead",
    "TaskHead",
    "TokenTaggingHead",
    "build_head",
    "is_well_formed_tree",
    "maximum_spanning_tree",
]
