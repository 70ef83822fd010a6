"""Head unit tests: CRF Viterbi vs brute force, word positions, QA no-answer, parser, MLM tying."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from taskgraph.errors import ConfigError
from taskgraph.models import EncoderBundle, HeadSpec, build_head
from taskgraph.models.heads import (
    BiaffineParserHead,
    HeadOutput,
    QAPrediction,
    is_well_formed_tree,
)
from taskgraph.models.heads.tagging import word_positions
from taskgraph.tasks.types import TaskType

HIDDEN = 16


def head_of(spec: HeadSpec, vocab: int = 50) -> nn.Module:
    """Return ``spec``'s head over a ``HIDDEN``-wide encoder, seeded, in eval mode."""
    torch.manual_seed(0)
    return build_head(spec, hidden_size=HIDDEN, word_embeddings=nn.Embedding(vocab, HIDDEN)).eval()


def _crf_score(head: nn.Module, emissions: torch.Tensor, tags: tuple[int, ...]) -> float:
    crf = head.crf
    score = crf.start_transitions[tags[0]] + crf.end_transitions[tags[-1]]
    score = score + sum(emissions[i, t] for i, t in enumerate(tags))
    score = score + sum(crf.transitions[a, b] for a, b in itertools.pairwise(tags))
    return float(score.detach())


def test_word_positions_come_from_labels_left_aligned() -> None:
    labels = torch.tensor(
        [[-100, 3, -100, 1, -100], [-100, -100, -100, -100, -100], [-100, 0, 2, 4, -100]]
    )
    starts, mask = word_positions({"labels": labels})
    assert starts.tolist() == [[1, 3, 0], [0, 0, 0], [1, 2, 3]]
    assert mask.tolist() == [[True, True, False], [False, False, False], [True, True, True]]
    with pytest.raises(ConfigError, match="word_starts"):
        word_positions({"input_ids": labels})


def test_crf_decode_matches_brute_force_over_word_level_emissions() -> None:
    head = head_of(HeadSpec("ner", TaskType.TOKEN_TAGGING, 3, {"crf": True}))
    with torch.no_grad():  # sharp random transitions so that the CRF actually matters
        for parameter in head.crf.parameters():
            parameter.normal_(0, 2.0)
    torch.manual_seed(1)
    hidden = torch.randn(3, 7, HIDDEN)
    # Words start at subwords 1, 2, 4 (row 0), 1..5 (row 1), and at 3 only (row 2).
    labels = torch.full((3, 7), -100)
    labels[0, [1, 2, 4]] = 0
    labels[1, 1:6] = 1
    labels[2, 3] = 2
    batch = {"labels": labels, "attention_mask": torch.ones(3, 7, dtype=torch.long)}
    with torch.no_grad():
        output = head(hidden, batch)
        paths = head.decode(output, batch)
    starts, mask = word_positions(batch)
    logits = output.logits
    for row, path in enumerate(paths):
        n = int(mask[row].sum())
        emissions = logits[row, starts[row, :n]]
        best = max(
            itertools.product(range(3), repeat=n),
            key=lambda tags: _crf_score(head, emissions, tags),
        )
        assert tuple(path) == best
        assert len(path) == n
    # The loss is the per-word negative log-likelihood from torchcrf: finite and positive.
    assert output.loss is not None and 0 < float(output.loss) < 50


def test_tagging_without_crf_scores_first_subwords_only() -> None:
    head = head_of(HeadSpec("pos", TaskType.TOKEN_TAGGING, 4))
    hidden = torch.randn(2, 5, HIDDEN)
    labels = torch.tensor([[-100, 2, -100, 3, -100], [-100, 1, -100, -100, -100]])
    output = head(hidden, {"labels": labels})
    logits = output.logits
    expected = F.cross_entropy(logits[labels != -100], labels[labels != -100])
    assert torch.allclose(output.loss, expected)
    decoded = head.decode(output, {"labels": labels})
    assert decoded == [
        [int(logits[0, 1].argmax()), int(logits[0, 3].argmax())],
        [int(logits[1, 1].argmax())],
    ]
    # Without labels the words come from word_starts/word_mask, and there is no loss.
    batch = {
        "word_starts": torch.tensor([[1, 3], [1, 0]]),
        "word_mask": torch.tensor([[True, True], [True, False]]),
    }
    unlabelled = head(hidden, batch)
    assert unlabelled.loss is None and head.decode(unlabelled, batch) == decoded


def test_crf_loss_is_per_word_nll_of_the_gold_word_tags() -> None:
    # Gold tags are read at each word's first sub-word, and the summed NLL is divided by the
    # number of words (token_mean), not returned as a sum.
    head = head_of(HeadSpec("ner", TaskType.TOKEN_TAGGING, 3, {"crf": True}))
    with torch.no_grad():
        for parameter in head.crf.parameters():
            parameter.normal_(0, 2.0)
    torch.manual_seed(1)
    hidden = torch.randn(2, 7, HIDDEN)
    labels = torch.full((2, 7), -100)
    labels[0, [1, 2, 4]] = torch.tensor([2, 0, 1])
    labels[1, [3, 5]] = torch.tensor([1, 2])
    batch = {"labels": labels, "attention_mask": torch.ones(2, 7, dtype=torch.long)}
    with torch.no_grad():
        output = head(hidden, batch)
        starts, mask = word_positions(batch)
        assert starts.tolist() == [[1, 2, 4], [3, 5, 0]]
        emissions = output.logits.gather(1, starts.unsqueeze(-1).expand(-1, -1, 3)).float()
        tags = torch.tensor([[2, 0, 1], [1, 2, 0]])
        nll = -head.crf(emissions, tags, mask=mask, reduction="sum")
    assert output.loss is not None
    assert float(output.loss) == pytest.approx(float(nll) / 5, rel=1e-5)


def test_crf_rows_without_words_are_skipped() -> None:
    head = head_of(HeadSpec("ner", TaskType.TOKEN_TAGGING, 3, {"crf": True}))
    labels = torch.tensor([[-100, 1, 2, -100], [-100, -100, -100, -100]])
    output = head(torch.randn(2, 4, HIDDEN), {"labels": labels})
    assert output.loss is not None and torch.isfinite(output.loss)
    paths = head.decode(output, {"labels": labels})
    assert len(paths[0]) == 2 and paths[1] == []


def test_qa_no_answer_and_span_decoding() -> None:
    head = head_of(HeadSpec("qa", TaskType.EXTRACTIVE_QA, 0, {"top_k": 3, "max_answer_length": 2}))
    with torch.no_grad():
        head.qa_outputs.weight.zero_()
        head.qa_outputs.bias.zero_()
    # [CLS] q q [SEP] c c c [SEP] pad: context = positions 4..6 (token type 1 before the last SEP).
    types = torch.tensor([[0, 0, 0, 0, 1, 1, 1, 1, 0]] * 2)
    attention = torch.tensor([[1, 1, 1, 1, 1, 1, 1, 1, 0]] * 2)
    batch = {
        "input_ids": torch.zeros(2, 9, dtype=torch.long),
        "token_type_ids": types,
        "attention_mask": attention,
    }
    start = torch.tensor([[3.0, 9, 9, 9, 1, 2, 0, 9, 9], [0.0, 0, 0, 0, 0, 0, 0, 0, 0]])
    end = torch.tensor([[3.0, 9, 9, 9, 0.5, 0, 1, 9, 9], [0.0, 0, 0, 0, 0, 0, 0, 0, 0]])
    predictions = head.decode(HeadOutput(loss=None, logits=(start, end)), batch)
    first = predictions[0]
    assert isinstance(first, QAPrediction)
    # Question tokens, the final [SEP] and padding never appear; spans are at most 2 tokens long.
    assert first.spans[0] == (5, 6, 3.0)
    assert [s[:2] for s in first.spans] == [(5, 6), (5, 5), (4, 4)]
    assert first.null_score == 6.0 and first.best == (0, 0)
    assert all(4 <= s <= e <= 6 and e - s < 2 for s, e, _ in first.spans)
    # An explicit context mask wins over token types.
    masked = head.decode(
        HeadOutput(loss=None, logits=(start, end)),
        {**batch, "context_mask": types.bool() & (torch.arange(9) == 6)},
    )
    assert [s[:2] for s in masked[0].spans] == [(6, 6)]

    # Unanswerable gold (0, 0) is learnable: the loss pulls [CLS] up, padding is masked out.
    hidden = torch.randn(2, 9, HIDDEN)
    gold = {"start_positions": torch.tensor([0, 5]), "end_positions": torch.tensor([0, 6])}
    output = head(hidden, {**batch, **gold})
    assert output.loss is not None and torch.isfinite(output.loss)
    assert bool((output.logits[0][:, 8] < -1e30).all())
    optimizer = torch.optim.SGD(head.parameters(), lr=0.5)
    for _ in range(50):
        optimizer.zero_grad()
        head(hidden, {**batch, **gold}).loss.backward()
        optimizer.step()
    trained = head.decode(head(hidden, batch), batch)
    assert trained[0].best == (0, 0)
    assert trained[1].best == (5, 6)


def test_parser_loss_uses_gold_heads_and_decodes_trees() -> None:
    head = head_of(
        HeadSpec("deps", TaskType.DEPENDENCY_PARSING, 3, {"arc_size": 8, "label_size": 4})
    )
    hidden = torch.randn(2, 6, HIDDEN)
    batch = {
        "word_starts": torch.tensor([[1, 2, 4], [1, 0, 0]]),
        "word_mask": torch.tensor([[True, True, True], [True, False, False]]),
        "heads": torch.tensor([[2, 0, 2], [0, -100, -100]]),
        "deprels": torch.tensor([[1, 0, 2], [0, -100, -100]]),
    }
    output = head(hidden, batch)
    arcs, labels = output.logits
    assert arcs.shape == (2, 3, 4) and labels.shape == (2, 3, 3)
    # Zero-initialised biaffine weights: all allowed heads are equally likely at the start.
    allowed = (arcs[0, 0] > -1e30).sum()
    assert int(allowed) == 3  # ROOT and two other words, not itself
    # Arc loss: 3 words with 3 candidates and 1 word whose only candidate is ROOT (log 1 = 0);
    # label loss: 4 words with 3 equally likely relations.
    log3 = float(torch.log(torch.tensor(3.0)))
    assert float(output.loss.detach()) == pytest.approx(0.75 * log3 + log3, rel=1e-5)
    optimizer = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(60):
        optimizer.zero_grad()
        head(hidden, batch).loss.backward()
        optimizer.step()
    trees = head.decode(head(hidden, {k: batch[k] for k in ("word_starts", "word_mask")}), batch)
    assert trees[0].heads == [2, 0, 2] and trees[0].deprels == [1, 0, 2]
    assert trees[1].heads == [0] and trees[1].deprels == [0]
    assert all(is_well_formed_tree([0, *t.heads]) for t in trees)


def random_parser(vocab: int = 50) -> BiaffineParserHead:
    """Return a parser head with trained-looking weights (the biaffine U and label tensor start
    at 0)."""
    head = head_of(
        HeadSpec("deps", TaskType.DEPENDENCY_PARSING, 3, {"arc_size": 8, "label_size": 4}), vocab
    )
    assert isinstance(head, BiaffineParserHead)
    with torch.no_grad():
        for parameter in head.parameters():
            parameter.normal_(0, 0.5)
    return head


def test_parser_label_loss_is_scored_at_the_gold_heads() -> None:
    # With random weights the predicted heads differ from the gold ones, so relation scores
    # taken at the predicted heads give another loss.
    head = random_parser()
    torch.manual_seed(2)
    hidden = torch.randn(1, 6, HIDDEN)
    batch = {
        "word_starts": torch.tensor([[1, 2, 4]]),
        "word_mask": torch.tensor([[True, True, True]]),
        "heads": torch.tensor([[2, 0, 2]]),
        "deprels": torch.tensor([[1, 0, 2]]),
    }
    with torch.no_grad():
        output = head(hidden, batch)
        arcs, _ = output.logits
        assert arcs[0].argmax(dim=-1).tolist() != [2, 0, 2]
        gold = head.label_scores(
            output.extra["label_dep"], output.extra["label_head"], batch["heads"]
        )
        expected = F.cross_entropy(arcs[0], batch["heads"][0]) + F.cross_entropy(
            gold[0], batch["deprels"][0]
        )
    assert output.loss is not None
    assert float(output.loss) == pytest.approx(float(expected), rel=1e-5)


def test_parser_decode_returns_a_tree_when_greedy_heads_form_a_cycle() -> None:
    head = random_parser()
    never = -1e9
    # Rows: words 1..3; columns: ROOT, 1, 2, 3.  Greedy heads are 1 <- 2, 2 <- 1 (a cycle) and
    # 3 <- ROOT; the best tree is 1 <- 2 <- 3 <- ROOT (5 + 1 + 5 against 5 + 0 + 5 for 2 <- 1 <- 3).
    arcs = torch.tensor([[[0.0, never, 5.0, 0.0], [0.0, 5.0, never, 1.0], [5.0, 0.0, 0.0, never]]])
    output = HeadOutput(
        loss=None,
        logits=(arcs, torch.zeros(1, 3, 3)),
        extra={
            "label_dep": torch.zeros(1, 3, 4),
            "label_head": torch.zeros(1, 4, 4),
            "word_mask": torch.tensor([[True, True, True]]),
        },
    )
    tree = head.decode(output, {})[0]
    assert is_well_formed_tree([0, *tree.heads])
    assert tree.heads == [2, 3, 0]


def test_classification_pooling() -> None:
    hidden = torch.randn(2, 4, HIDDEN)
    attention = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    mean = head_of(HeadSpec("c", TaskType.SENTENCE_CLASSIFICATION, 3))
    cls = head_of(HeadSpec("c", TaskType.SENTENCE_PAIR_CLASSIFICATION, 3, {"pooling": "cls"}))
    expected_mean = mean.classifier(hidden[0, :2].mean(dim=0))
    assert torch.allclose(
        mean(hidden, {"attention_mask": attention}).logits[0], expected_mean, atol=1e-6
    )
    assert torch.allclose(
        cls(hidden, {"attention_mask": attention}).logits, cls.classifier(hidden[:, 0])
    )
    output = mean(hidden, {"attention_mask": attention, "labels": torch.tensor([2, 0])})
    assert torch.allclose(output.loss, F.cross_entropy(output.logits, torch.tensor([2, 0])))
    assert mean.decode(output, {}) == output.logits.argmax(dim=-1).tolist()


def test_masked_lm_is_tied_and_scores_only_masked_positions(
    tiny_encoder: Callable[..., EncoderBundle],
) -> None:
    bundle = tiny_encoder()
    embeddings = bundle.model.get_input_embeddings()
    head = build_head(
        HeadSpec("mlm", TaskType.MASKED_LM, 0),
        hidden_size=bundle.hidden_size,
        word_embeddings=embeddings,
    )
    assert head.decoder_weight is embeddings.weight
    untied = build_head(
        HeadSpec("mlm", TaskType.MASKED_LM, 0, {"tie": False}),
        hidden_size=bundle.hidden_size,
        word_embeddings=embeddings,
    )
    assert untied.decoder_weight is not embeddings.weight

    hidden = torch.randn(2, 5, bundle.hidden_size)
    labels = torch.tensor([[-100, 7, -100, 9, -100], [-100, -100, -100, -100, -100]])
    output = head(hidden, {"labels": labels})
    assert output.logits.shape == (2, bundle.tokenizer.vocab_size)
    assert torch.isfinite(output.loss)
    output.loss.backward()
    assert embeddings.weight.grad is not None and embeddings.weight.grad.abs().sum() > 0
    assert [len(p) for p in head.decode(output, {"labels": labels})] == [2, 0]
    assert output.extra["count"].tolist() == [2, 0]
    sums = output.extra["loss_sum"]
    assert float(sums[1]) == 0.0 and float(sums[0]) == pytest.approx(
        2 * float(output.loss.detach()), rel=1e-5
    )
    nothing_masked = head(hidden, {"labels": torch.full_like(labels, -100)})
    assert float(nothing_masked.loss.detach()) == 0.0
    full = head(hidden, {"attention_mask": torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])})
    assert full.loss is None and full.logits.shape == (2, 5, bundle.tokenizer.vocab_size)
    assert [len(p) for p in head.decode(full, {})] == [3, 5]


def test_head_specs_and_options_are_validated() -> None:
    with pytest.raises(
        ConfigError,
        match=r"unknown token_tagging head option\(s\) crf_layer; allowed: crf, dropout",
    ):
        head_of(HeadSpec("ner", TaskType.TOKEN_TAGGING, 3, {"crf_layer": True}))
    with pytest.raises(ConfigError, match="num_labels must be >= 1"):
        HeadSpec("ner", TaskType.TOKEN_TAGGING, 0)
    with pytest.raises(ConfigError, match="unknown task type 'tagging'"):
        HeadSpec("ner", "tagging", 3)  # type: ignore[arg-type]
    assert HeadSpec("ner", "token_tagging", 3).type is TaskType.TOKEN_TAGGING  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="pooling must be one of mean, cls"):
        head_of(HeadSpec("c", TaskType.SENTENCE_CLASSIFICATION, 2, {"pooling": "max"}))
    with pytest.raises(ConfigError, match="no label classifier"):
        build_head(
            HeadSpec("d", TaskType.DEPENDENCY_PARSING, 2),
            hidden_size=HIDDEN,
            word_embeddings=nn.Embedding(5, HIDDEN),
            classifier=nn.Linear(HIDDEN, 2),
        )


def test_tagging_without_crf_gives_a_zero_loss_with_gradients_when_no_word_is_labelled() -> None:
    head = head_of(HeadSpec("pos", TaskType.TOKEN_TAGGING, 4)).train()
    output = head(torch.randn(2, 5, HIDDEN), {"labels": torch.full((2, 5), -100)})
    assert output.loss is not None and float(output.loss.detach()) == 0.0
    output.loss.backward()  # a step on such a batch changes nothing, but must not fail
    grad = head.classifier.weight.grad
    assert grad is not None and bool((grad == 0).all())


def test_parser_gives_a_zero_loss_with_gradients_when_no_word_is_labelled() -> None:
    head = head_of(
        HeadSpec("deps", TaskType.DEPENDENCY_PARSING, 3, {"arc_size": 8, "label_size": 4})
    )
    head.train()
    batch = {
        "word_starts": torch.tensor([[1, 2, 4], [1, 0, 0]]),
        "word_mask": torch.tensor([[True, True, True], [True, False, False]]),
        "heads": torch.full((2, 3), -100),
        "deprels": torch.full((2, 3), -100),
    }
    # Padded words' arcs hold the dtype's minimum: their sum overflows to -inf.
    output = head(torch.randn(2, 6, HIDDEN), batch)
    assert output.loss is not None and float(output.loss.detach()) == 0.0
    output.loss.backward()
    grad = head.arc_weight.grad
    assert grad is not None and bool((grad == 0).all())


def test_qa_gives_a_zero_loss_with_gradients_when_every_gold_position_is_past_the_window() -> None:
    head = head_of(HeadSpec("qa", TaskType.EXTRACTIVE_QA, 0)).train()
    hidden = torch.randn(2, 6, HIDDEN)
    # Padding too: the masked logits' sum overflows to -inf, so the zero must not come from it.
    batch = {"attention_mask": torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 0, 0, 0]])}
    past = {"start_positions": torch.tensor([6, 40]), "end_positions": torch.tensor([7, 41])}
    output = head(hidden, {**batch, **past})
    assert output.loss is not None and float(output.loss.detach()) == 0.0
    output.loss.backward()
    grad = head.qa_outputs.weight.grad
    assert grad is not None and bool((grad == 0).all())
    # Starts inside the window still count when every end is past it.
    half = {"start_positions": torch.tensor([1, 2]), "end_positions": torch.tensor([9, 9])}
    start, _ = head(hidden, batch).logits
    expected = F.cross_entropy(start, half["start_positions"]) / 2
    assert torch.allclose(head(hidden, {**batch, **half}).loss, expected)
