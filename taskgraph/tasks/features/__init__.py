"""From words to model inputs: subword alignment, dependency heads, QA windows, MLM masking.

Every encoder here uses a Hugging Face *fast* tokenizer (offsets and word ids come from it).
Conventions (what the heads in :mod:`taskgraph.models` expect):

- **token tagging**: a word's label sits on its *first* subword; other subwords and special
  tokens get ``-100`` (ignored by the loss), after Devlin et al. 2019 (BERT, section 5.3).
- **dependency parsing**: ``word_starts[i]`` is the position of word ``i``'s first subword;
  ``heads[i]`` is 0 for the root (the ``[CLS]`` vector stands for ROOT) and ``1..n`` for words.
- **extractive QA**: question + context windows of at most ``max_length`` tokens overlapping by
  ``doc_stride`` tokens (Hugging Face's ``stride``, as in its ``run_qa.py``); the answer's
  start/end token positions, or 0 (``[CLS]``) when the question is unanswerable or the answer is
  not wholly inside the window.
- **masked LM**: 15% of the non-special tokens are chosen; 80% of those become ``[MASK]``, 10% a
  random token, 10% stay (Devlin et al. 2019); labels are ``-100`` elsewhere.

Words cut off by ``max_length`` are counted (``truncated_words``, and the examples that lost any
in ``truncated_examples``) so the trainer can report them; for tagging and parsing their
predictions fall back to a default label at scoring time.  For classification a word is one
of the tokenizer's pre-tokenized words, counted when any of its subwords is cut.  No torch here: features are
plain lists and numpy arrays; :mod:`taskgraph.training` pads them into tensors.

Modules: :mod:`.encoded_split` (``EncodedSplit``, ``IGNORE_INDEX``, the tokenizer fingerprint),
:mod:`.word_level` (tagging, parsing), :mod:`.classification`, :mod:`.qa`, :mod:`.masked_lm`,
and :mod:`.dispatch` (``encode_examples``, by task type).
"""

from __future__ import annotations

from taskgraph.tasks.features.classification import encode_classification
from taskgraph.tasks.features.dispatch import encode_examples
from taskgraph.tasks.features.encoded_split import IGNORE_INDEX, EncodedSplit, tokenizer_fingerprint
from taskgraph.tasks.features.masked_lm import encode_masked_lm, mask_tokens
from taskgraph.tasks.features.qa import encode_qa
from taskgraph.tasks.features.word_level import encode_parsing, encode_tagging

__all__ = [
    "IGNORE_INDEX",
    "EncodedSplit",
    "encode_classification",
    "encode_examples",
    "encode_masked_lm",
    "encode_parsing",
    "encode_qa",
    "encode_tagging",
    "mask_tokens",
    "tokenizer_fingerprint",
]
