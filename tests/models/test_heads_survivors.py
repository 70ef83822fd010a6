"""Task-head behaviour that a mutation audit found untested.

A CRF batch without labelled words, where the parser's ROOT and head prior come from, which
heads the relations are decoded for, the QA no-answer tie and context without token types,
and the label classifier a sentence-pair head accepts.
"""

from __future__ import annotations

import torch
from torch import nn

from taskgraph.models import HeadSpec, build_head
from taskgraph.models.heads import HeadOutput, QAPrediction
from taskgraph.models.heads.qa import context_mask
from taskgraph.tasks.types import TaskType
from tests.models.test_heads import HIDDEN, head_of, random_parser


def test_crf_batch_without_labelled_words_gives_a_zero_loss_and_empty_paths() -> None:
    # Every window of a long document can fall between labelled words.
    head = head_of(HeadSpec("ner", TaskType.TOKEN_TAGGING, 3, {"crf": True}), vocab=20).train()
    batch = {"labels": torch.full((2, 5), -100)}
    output = head(torch.randn(2, 5, HIDDEN), batch)
    assert output.loss is not None and float(output.loss.detach()) == 0.0
    output.loss.backward()
    assert head.decode(output, batch) == [[], []]


PARSER_BATCH = {
    "word_starts": torch.tensor([[1, 2, 4]]),
    "word_mask": torch.tensor([[True, True, True]]),
}


def test_parser_root_is_the_first_token() -> None:
    # ROOT is the [CLS] state; the last position (here neither a word nor [CLS]) plays no part.
    head = random_parser(vocab=20)
    torch.manual_seed(1)
    hidden = torch.randn(1, 6, HIDDEN)
    with torch.no_grad():
        arcs, _ = head(hidden, PARSER_BATCH).logits
        last = hidden.clone()
        last[:, -1] += 3.0
        assert torch.equal(head(last, PARSER_BATCH).logits[0], arcs)
        first = hidden.clone()
        first[:, 0] += 3.0
        moved = head(first, PARSER_BATCH).logits[0]
    assert not torch.allclose(moved[..., 0], arcs[..., 0])
    assert torch.equal(moved[..., 1:], arcs[..., 1:])


def test_parser_head_prior_scores_the_candidate_head() -> None:
    # s[i, j] = d_i U h_j + u . h_j: the prior term varies with the candidate head j.
    head = random_parser(vocab=20)
    with torch.no_grad():
        head.arc_weight.zero_()
    torch.manual_seed(1)
    hidden = torch.randn(1, 6, HIDDEN)
    with torch.no_grad():
        arcs, _ = head(hidden, PARSER_BATCH).logits
        words = hidden[:, PARSER_BATCH["word_starts"][0]]
        nodes = torch.cat([hidden[:, :1], words], dim=1)
        prior = head.arc_head(nodes) @ head.arc_head_bias  # (1, W + 1)
    allowed = arcs > -1e30
    expected = prior.unsqueeze(1).expand_as(arcs)
    assert torch.allclose(arcs[allowed], expected[allowed], atol=1e-6)


def test_parser_decode_scores_relations_at_the_tree_heads() -> None:
    # Greedy heads 1 <- 2, 2 <- 1 form a cycle; the tree is 1 <- 2 <- 3 <- ROOT.  Relations
    # must be scored for the tree's heads, not read off the greedy-head label scores.
    head = random_parser(vocab=20)
    never = -1e9
    arcs = torch.tensor([[[0.0, never, 5.0, 0.0], [0.0, 5.0, never, 1.0], [5.0, 0.0, 0.0, never]]])
    torch.manual_seed(3)
    label_dep, label_head = torch.randn(1, 3, 4), torch.randn(1, 4, 4)
    with torch.no_grad():
        greedy = head.label_scores(label_dep, label_head, arcs.argmax(dim=-1))
        at_tree = head.label_scores(label_dep, label_head, torch.tensor([[2, 3, 0]]))
    expected = at_tree.argmax(dim=-1)[0].tolist()
    assert expected != greedy.argmax(dim=-1)[0].tolist(), "the two must differ for the test"
    output = HeadOutput(
        loss=None,
        logits=(arcs, greedy),
        extra={
            "label_dep": label_dep,
            "label_head": label_head,
            "word_mask": PARSER_BATCH["word_mask"],
        },
    )
    tree = head.decode(output, {})[0]
    assert tree.heads == [2, 3, 0]
    assert tree.deprels == expected


def test_qa_span_that_only_ties_the_no_answer_score_is_no_answer() -> None:
    assert QAPrediction(spans=[(4, 5, 2.5)], null_score=2.5).best == (0, 0)
    assert QAPrediction(spans=[(4, 5, 2.5)], null_score=2.4).best == (4, 5)


def test_qa_context_without_token_types_leaves_out_cls_final_sep_and_padding() -> None:
    # Encoders without token types (DistilBERT): [CLS] is the no-answer slot, never a span.
    batch = {
        "input_ids": torch.zeros(2, 6, dtype=torch.long),
        "attention_mask": torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]]),
    }
    expected = [[False, True, True, True, True, False], [False, True, True, False, False, False]]
    assert context_mask(batch, length=6).tolist() == expected
    zero_types = {**batch, "token_type_ids": torch.zeros(2, 6, dtype=torch.long)}
    assert context_mask(zero_types, length=6).tolist() == expected


def test_sentence_pair_heads_take_a_label_classifier() -> None:
    # Label embedding sharing replaces the classifier of pair tasks (NLI) as of single sentences.
    classifier = nn.Linear(HIDDEN, 3)
    spec = HeadSpec("nli", TaskType.SENTENCE_PAIR_CLASSIFICATION, 3)
    head = build_head(
        spec, hidden_size=HIDDEN, word_embeddings=nn.Embedding(20, HIDDEN), classifier=classifier
    )
    assert head.classifier is classifier
