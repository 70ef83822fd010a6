"""score_predictions on real gold examples, per task type, and metric directions."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from taskgraph.errors import ConfigError
from taskgraph.tasks import (
    QAExample,
    TaskType,
    define_task,
    get_task,
    label_vocabulary,
    list_tasks,
    load_examples,
    metric_direction,
    score_predictions,
)
from taskgraph.tasks.scoring import _merge
from taskgraph.tasks.types import ParsedSentence, TaggedSentence, TextExample


def test_tagging_perfect_and_damaged(data_dir: Path) -> None:
    task = get_task("wnut17")
    gold = load_examples(task, "dev", data_dir=data_dir, limit=200)
    tags = [g.tags for g in gold if isinstance(g, TaggedSentence)]
    perfect = score_predictions(task, gold, tags)
    assert perfect["f1"] == perfect["precision"] == perfect["recall"] == perfect["accuracy"] == 1.0
    assert perfect["f1_person"] == 1.0
    all_o = score_predictions(task, gold, [tuple("O" for _ in t) for t in tags])
    assert all_o["f1"] == 0.0 and 0.8 < all_o["accuracy"] < 1.0
    pos = get_task("ud_en_ewt_upos")
    gold = load_examples(pos, "dev", data_dir=data_dir, limit=50)
    assert set(score_predictions(pos, gold, [g.tags for g in gold])) == {"accuracy"}  # type: ignore[union-attr]


def test_parsing_scores(data_dir: Path) -> None:
    task = get_task("ud_tr_imst_deps")
    gold = [
        g
        for g in load_examples(task, "dev", data_dir=data_dir, limit=30)
        if isinstance(g, ParsedSentence)
    ]
    assert score_predictions(task, gold, [(g.heads, g.deprels) for g in gold]) == {
        "uas": 1.0,
        "las": 1.0,
    }
    wrong_rels = score_predictions(task, gold, [(g.heads, ["dep"] * len(g.heads)) for g in gold])
    assert wrong_rels["uas"] == 1.0 and wrong_rels["las"] < 0.2
    with pytest.raises(ConfigError, match="must be \\(heads, deprels\\)"):
        score_predictions(task, gold, [g.heads for g in gold])


def test_squad_scores_on_real_questions(data_dir: Path) -> None:
    task = get_task("squad2")
    gold = [g for g in load_examples(task, "dev", data_dir=data_dir) if isinstance(g, QAExample)]
    answers = [[a.text for a in g.answers] or [""] for g in gold]
    assert score_predictions(task, gold, answers)["f1"] == 1.0
    abstain = score_predictions(task, gold, [[""] for _ in gold])
    unanswerable = sum(g.is_impossible for g in gold) / len(gold)
    assert abstain["exact"] == pytest.approx(unanswerable)
    assert abstain["no_ans_exact"] == 1.0 and abstain["has_ans_exact"] == 0.0
    # only the first answer of the ranked list counts
    assert score_predictions(task, gold, [["zzz", *a] for a in answers])["exact"] == 0.0


def _bioasq_gold() -> list[QAExample]:
    def snippet(qid: str, answer: str, context: str) -> QAExample:
        start = context.index(answer)
        from taskgraph.tasks import Answer

        return QAExample(
            id=qid,
            question="q",
            context=context,
            answers=(Answer(text=answer, start=start),),
            group=qid.split(":")[0],
        )

    return [
        snippet("q1:1", "BRCA1", "BRCA1 is a gene"),
        snippet("q1:2", "BRCA-1", "BRCA-1 again"),
        snippet("q2:1", "p53", "p53 here"),
    ]


def test_bioasq_scores_merge_snippets_per_question() -> None:
    task = get_task("bioasq_factoid")
    gold = _bioasq_gold()
    # merged rank by rank: q1 -> [x, brca-1, y]; q2 -> [a, b, c, d, e, p53] (p53 is 6th)
    plain = score_predictions(
        task, gold, [["x", "y"], ["brca-1"], ["a", "b", "c", "d", "e", "p53"]]
    )
    assert plain == {"strict_accuracy": 0.0, "lenient_accuracy": 0.5, "mrr": pytest.approx(0.25)}
    # with scores the best-scored answer of all snippets comes first
    scored = score_predictions(
        task, gold, [[("x", 0.2)], [("BRCA1", 0.9)], [("p53", 0.5), ("z", 0.7)]]
    )
    assert scored == {"strict_accuracy": 0.5, "lenient_accuracy": 1.0, "mrr": pytest.approx(0.75)}


def _squad_file(path: Path) -> Path:
    article = {
        "title": "art",
        "paragraphs": [
            {
                "context": "Alpha and Beta.",
                "qas": [
                    {
                        "id": "q1",
                        "question": "first?",
                        "answers": [{"text": "Alpha", "answer_start": 0}],
                    },
                    {
                        "id": "q2",
                        "question": "second?",
                        "answers": [{"text": "Beta", "answer_start": 10}],
                    },
                ],
            }
        ],
    }
    path.write_text(json.dumps({"data": [article]}), encoding="utf-8")
    return path


@pytest.mark.parametrize("group_by", [None, "title"])
def test_factoid_scores_count_each_question_of_an_article(
    tmp_path: Path, group_by: str | None
) -> None:
    # The default group is the article: pooling its questions made swapped answers right.
    task = define_task(
        "my_factoid",
        format="squad",
        type="extractive_qa",
        label_field="answers",
        files={"test": str(_squad_file(tmp_path / "qa.json"))},
        metrics=["strict_accuracy", "lenient_accuracy", "mrr"],
        reader_options={} if group_by is None else {"group_by": group_by},
    )
    gold = load_examples(task, "test")
    assert {g.group for g in gold if isinstance(g, QAExample)} == {"art"}
    swapped = score_predictions(task, gold, [["Beta"], ["Alpha"]])
    assert swapped == {"strict_accuracy": 0.0, "lenient_accuracy": 0.0, "mrr": 0.0}
    half = score_predictions(task, gold, [["Alpha"], ["Alpha", "Beta"]])
    assert half == {"strict_accuracy": 0.5, "lenient_accuracy": 1.0, "mrr": pytest.approx(0.75)}


def test_factoid_scores_pool_the_snippets_of_one_question_with_id_prefix(
    tmp_path: Path,
) -> None:
    path = tmp_path / "qa.json"
    path.write_text(
        _squad_file(path).read_text(encoding="utf-8").replace('"q2"', '"q1:2"'),
        encoding="utf-8",
    )
    task = define_task(
        "my_bioasq",
        format="squad",
        type="extractive_qa",
        label_field="answers",
        files={"test": str(path)},
        metrics=["strict_accuracy", "mrr"],
        reader_options={"group_by": "id_prefix"},
    )
    gold = load_examples(task, "test")
    # q1 and q1:2 are one question whose gold answers are Alpha and Beta
    assert score_predictions(task, gold, [["Beta"], ["Alpha"]])["strict_accuracy"] == 1.0


def test_classification_scores(data_dir: Path) -> None:
    mrpc = get_task("mrpc")
    gold = [g for g in load_examples(mrpc, "dev", data_dir=data_dir) if isinstance(g, TextExample)]
    labels = [g.label for g in gold]
    assert score_predictions(mrpc, gold, labels) == {"accuracy": 1.0, "f1": 1.0}
    all_yes = score_predictions(mrpc, gold, ["paraphrase"] * len(gold))
    share = labels.count("paraphrase") / len(labels)
    assert all_yes["accuracy"] == pytest.approx(share)
    assert all_yes["f1"] == pytest.approx(2 * share / (1 + share))
    cola = get_task("cola")
    gold = load_examples(cola, "dev", data_dir=data_dir)
    assert score_predictions(cola, gold, ["acceptable"] * len(gold))["mcc"] == 0.0
    rte = get_task("rte")
    hidden = load_examples(rte, "test_unlabeled", data_dir=data_dir, limit=5)
    with pytest.raises(ConfigError, match="no label"):
        score_predictions(rte, hidden, ["entailment"] * 5)


def test_scored_answers_of_snippets_merge_best_score_first() -> None:
    assert _merge([[("b", 1.0), ("a", 3.0)], [("c", 2.0)]]) == ["a", "c", "b"]
    # one text from two snippets keeps its best score (5), so it ranks above "y" (3)
    assert _merge([[("x", 1.0), ("y", 3.0)], [("X", 5.0)]]) == ["X", "y"]


def test_masked_lm_loss_is_per_token(tmp_path: Path) -> None:
    (tmp_path / "dev.tsv").write_text("a b c\nd\n", encoding="utf-8")
    task = define_task(
        "words",
        format="tsv",
        type="masked_lm",
        label_field="text",
        path=str(tmp_path),
        reader_options={"text_column": 0},
    )
    gold = [TextExample("a b c"), TextExample("d")]
    # (summed loss, masked-token count) per example: 8 over 4 tokens, not 8 over 2 examples
    scores = score_predictions(task, gold, [(6.0, 3), (2.0, 1)])
    assert scores["loss"] == pytest.approx(2.0)
    assert scores["perplexity"] == pytest.approx(math.exp(2.0))


def test_prediction_count_and_type_are_checked(data_dir: Path) -> None:
    task = get_task("sst2")
    gold = load_examples(task, "test", data_dir=data_dir, limit=3)
    with pytest.raises(ConfigError, match="expected 3 predictions"):
        score_predictions(task, gold, ["positive"])
    with pytest.raises(ConfigError, match="expected TaggedSentence"):
        score_predictions(get_task("bc2gm"), gold, [(), (), ()])


@pytest.mark.parametrize(
    ("metric", "direction"),
    [
        ("f1", "maximize"),
        ("las", "maximize"),
        ("mrr", "maximize"),
        ("perplexity", "minimize"),
        ("loss", "minimize"),
        ("val_loss", "minimize"),
        ("f1_loss_type", "maximize"),
    ],
)
def test_metric_direction(metric: str, direction: str) -> None:
    assert metric_direction(metric) == direction


def test_per_type_entity_scores_of_builtin_tasks_are_maximised(data_dir: Path) -> None:
    types = {
        label[2:]
        for task in list_tasks()
        if task.type is TaskType.TOKEN_TAGGING and task.label_field == "ner"
        for label in label_vocabulary(task, data_dir=data_dir)
        if label[:2] in ("B-", "I-", "E-", "S-")
    }
    assert {"PER", "Cancer", "person", "g_"} <= types
    names = [f"{score}_{kind}" for kind in types for score in ("f1", "precision", "recall")]
    assert {metric_direction(name) for name in names} == {"maximize"}
