"""The built-in task catalog: one or more tasks for every dataset of the data directory.

Naming rule: a task is named after its dataset folder.  Folders named after a *corpus* get a
suffix naming the annotation layer (``ud_en_ewt_upos``, ``ud_en_ewt_deps``, ``cs_cnec2_ner``,
``wikiann_en_ner``); folders named after a *benchmark task* keep their name (``bc2gm``,
``wnut17``, ``cola``, ``bioasq_factoid``) as do names that already say the layer
(``tr_ner_tur2003``, ``genia_pos``).  ``squad2_dev_half`` becomes ``squad2``: its train, dev and
test are carved from that half.  Split names are ``train``, ``dev`` and ``test`` (upstream
``devel``/``dtest``/``valid`` are ``dev``, CNEC's ``etest`` is ``test``), plus ``dev_ood``
(CoLA out-of-domain) and ``test_unlabeled`` (RTE's hidden-label test: read, never scored).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from taskgraph.errors import UnknownNameError
from taskgraph.tasks.splits import format_carve
from taskgraph.tasks.types import SplitSource, TaskDef, TaskType

__all__ = ["BUILTIN_TASKS", "get_task", "list_tasks"]

_NER_METRICS = ("f1", "precision", "recall")
_STANDARD = {"train": "train.tsv", "dev": "devel.tsv", "test": "test.tsv"}


def _task(
    name: str,
    *,
    type: TaskType,
    format: str,
    dataset: str,
    splits: Mapping[str, SplitSource],
    label_field: str,
    metrics: tuple[str, ...],
    description: str,
    reader_options: Mapping[str, Any] | None = None,
) -> TaskDef:
    return TaskDef(
        name=name,
        type=type,
        format=format,
        dataset=dataset,
        splits=MappingProxyType(dict(splits)),
        label_field=label_field,
        metrics=metrics,
        reader_options=MappingProxyType(dict(reader_options or {})),
        description=description,
    )


def _files(dataset: str, files: Mapping[str, str]) -> dict[str, SplitSource]:
    return {split: SplitSource(file=f"{dataset}/{name}") for split, name in files.items()}


def _carved(
    dataset: str, file: str, parts: tuple[tuple[str, float], ...]
) -> dict[str, SplitSource]:
    return {
        name: SplitSource(file=f"{dataset}/{file}", select=format_carve(parts, name))
        for name, _ in parts
    }


def _ud(dataset: str, stem: str, splits: dict[str, SplitSource], language: str) -> list[TaskDef]:
    return [
        _task(
            f"{dataset}_upos",
            type=TaskType.TOKEN_TAGGING,
            format="conllu",
            dataset=dataset,
            splits=splits,
            label_field="upos",
            metrics=("accuracy",),
            description=f"Universal POS tagging, {language} (UD {stem}).",
        ),
        _task(
            f"{dataset}_deps",
            type=TaskType.DEPENDENCY_PARSING,
            format="conllu",
            dataset=dataset,
            splits=splits,
            label_field="head+deprel",
            metrics=("las", "uas"),
            description=f"Basic dependency parsing, {language} (UD {stem}).",
        ),
    ]


def _ud_files(dataset: str, stem: str) -> dict[str, SplitSource]:
    return _files(dataset, {s: f"{stem}-ud-{s}.conllu" for s in ("train", "dev", "test")})


def _ner(
    name: str,
    dataset: str,
    splits: dict[str, SplitSource],
    description: str,
    **options: Any,
) -> TaskDef:
    return _task(
        name,
        type=TaskType.TOKEN_TAGGING,
        format="iob",
        dataset=dataset,
        splits=splits,
        label_field="ner",
        metrics=_NER_METRICS,
        description=description,
        reader_options=options,
    )


_BIO_NER = {
    "bc2gm": "gene and gene-product mentions (BioCreative II GM)",
    "bc5cdr_chem": "chemicals (BioCreative V CDR)",
    "bc5cdr_disease": "diseases (BioCreative V CDR)",
    "bc5cdr": "chemicals and diseases (BioCreative V CDR)",
    "ncbi_disease": "diseases (NCBI disease corpus)",
    "linnaeus": "species (LINNAEUS)",
    "anatem": "anatomical entities (AnatEM)",
    "bionlp09": "proteins (BioNLP 2009 shared task)",
    "bionlp11epi": "proteins (BioNLP 2011 EPI)",
    "bionlp11id": "chemicals, organisms, proteins, regulons/operons (BioNLP 2011 ID)",
    "bionlp13cg": "16 anatomical and molecular types (BioNLP 2013 CG)",
    "bionlp13ge": "proteins (BioNLP 2013 GE)",
    "bionlp13pc": "genes, chemicals, complexes, cellular components (BioNLP 2013 PC)",
    "craft": "6 ontology-based types in full-text articles (CRAFT)",
    "ex_ptm": "proteins (BioNLP 2011 EPI/PTM extension)",
}

_TRAIN_DEV = (("train", 0.8), ("dev", 0.2))
_TRAIN_DEV_TEST = (("train", 0.7), ("dev", 0.15), ("test", 0.15))


def _build() -> dict[str, TaskDef]:
    tasks: list[TaskDef] = []
    tasks += _ud("ud_tr_imst", "tr_imst", _ud_files("ud_tr_imst", "tr_imst"), "Turkish")
    tasks += _ud("ud_cs_cltt", "cs_cltt", _ud_files("ud_cs_cltt", "cs_cltt"), "Czech legal")
    tasks += _ud("ud_en_ewt", "en_ewt", _ud_files("ud_en_ewt", "en_ewt"), "English web")
    fictree = {
        **_carved("ud_cs_fictree", "cs_fictree-ud-dev.conllu", _TRAIN_DEV),
        **_files("ud_cs_fictree", {"test": "cs_fictree-ud-test.conllu"}),
    }
    tasks += _ud(
        "ud_cs_fictree",
        "cs_fictree",
        fictree,
        "Czech fiction; train/dev carved from upstream dev by document",
    )

    tasks.append(
        _ner(
            "tr_ner_tur2003",
            "tr_ner_tur2003",
            {
                **_carved("tr_ner_tur2003", "train.iob", (("train", 0.9), ("dev", 0.1))),
                **_files("tr_ner_tur2003", {"test": "test.iob"}),
            },
            "Turkish newswire NER: PER, LOC, ORG (Tür et al. 2003); dev carved from train.",
        )
    )
    cnec = _files("cs_cnec2", {"train": "train.iob", "dev": "dtest.iob", "test": "etest.iob"})
    tasks.append(
        _ner(
            "cs_cnec2_ner",
            "cs_cnec2",
            cnec,
            "Czech NER, CNEC 2.0 coarse supertypes (A G I M N O P T).",
            tag_column=1,
        )
    )
    tasks.append(
        _ner(
            "cs_cnec2_ner_fine",
            "cs_cnec2",
            cnec,
            "Czech NER, CNEC 2.0 fine types (46, e.g. pf, gu, ic).",
            tag_column=2,
        )
    )
    tasks.append(
        _ner(
            "cs_chnec_ner",
            "cs_chnec",
            _files("cs_chnec", {s: f"CHNEC_v0.1_{s}.conll" for s in ("train", "dev", "test")}),
            "Czech historical newspaper NER: person, institution, geo, time, object (IOB1 read "
            "as IOB2).",
            separator="whitespace",
            scheme="iob1",
        )
    )
    tasks.append(
        _ner(
            "wnut17",
            "wnut17",
            _files(
                "wnut17",
                {
                    "train": "wnut17train.conll",
                    "dev": "emerging.dev.conll",
                    "test": "emerging.test.annotated",
                },
            ),
            "English social-media NER of emerging entities (WNUT 2017).",
        )
    )
    tasks.append(
        _ner(
            "wikiann_en_ner",
            "wikiann_en",
            _files("wikiann_en", {"train": "train", "dev": "dev", "test": "test"}),
            "English Wikipedia silver NER: PER, LOC, ORG (WikiANN, Rahimi et al. splits).",
            token_prefix="en:",
        )
    )
    for dataset, what in _BIO_NER.items():
        tasks.append(_ner(dataset, dataset, _files(dataset, _STANDARD), f"Biomedical NER: {what}."))
    tasks.append(
        _ner(
            "jnlpba",
            "jnlpba",
            {
                **_carved("jnlpba", "devel.tsv", _TRAIN_DEV),
                **_files("jnlpba", {"test": "test.tsv"}),
            },
            "Biomedical NER: protein, DNA, RNA, cell line, cell type (JNLPBA); train/dev carved "
            "from upstream devel by document.",
        )
    )
    tasks.append(
        _task(
            "genia_pos",
            type=TaskType.TOKEN_TAGGING,
            format="iob",
            dataset="genia_pos",
            splits=_files("genia_pos", _STANDARD),
            label_field="pos",
            metrics=("accuracy",),
            description="Biomedical PTB part-of-speech tagging (GENIA).",
            reader_options={"scheme": "none"},
        )
    )

    tasks.append(
        _task(
            "squad2",
            type=TaskType.EXTRACTIVE_QA,
            format="squad",
            dataset="squad2_dev_half",
            splits=_carved("squad2_dev_half", "dev-v2.0.cs224n-half.json", _TRAIN_DEV_TEST),
            label_field="answers",
            metrics=("f1", "exact"),
            description="SQuAD 2.0 extractive QA with unanswerable questions; the labeled half of "
            "the official dev set, carved into train/dev/test by article.",
        )
    )
    tasks.append(
        _task(
            "bioasq_factoid",
            type=TaskType.EXTRACTIVE_QA,
            format="squad",
            dataset="bioasq_factoid",
            splits=_carved(
                "bioasq_factoid", "dev.json", (("train", 0.6), ("dev", 0.2), ("test", 0.2))
            ),
            label_field="answers",
            metrics=("strict_accuracy", "lenient_accuracy", "mrr"),
            description="BioASQ factoid QA over PubMed snippets; scored per BioASQ question (all "
            "its snippets); carved into train/dev/test by question.",
            reader_options={"group_by": "id_prefix"},
        )
    )

    tasks.append(
        _task(
            "bioasq_yesno",
            type=TaskType.SENTENCE_PAIR_CLASSIFICATION,
            format="tsv",
            dataset="bioasq_yesno",
            splits={
                **_carved("bioasq_yesno", "train.tsv", (("train", 0.9), ("dev", 0.1))),
                **_files("bioasq_yesno", {"test": "test.tsv"}),
            },
            label_field="label",
            metrics=("accuracy", "macro_f1"),
            description="BioASQ yes/no answer from question + ideal answer; dev carved from train.",
            reader_options={
                "header": True,
                "text_column": "question",
                "pair_column": "ideal_answer",
                "label_column": "yesno_label",
                "label_names": {"0": "no", "1": "yes"},
                "positive_label": "yes",
            },
        )
    )
    tasks.append(
        _task(
            "cola",
            type=TaskType.SENTENCE_CLASSIFICATION,
            format="tsv",
            dataset="cola",
            splits=_files(
                "cola",
                {
                    "train": "in_domain_train.tsv",
                    "dev": "in_domain_dev.tsv",
                    "dev_ood": "out_of_domain_dev.tsv",
                },
            ),
            label_field="label",
            metrics=("mcc", "accuracy"),
            description="Grammatical acceptability (CoLA); no public test, dev_ood = out-of-domain dev.",
            reader_options={
                "text_column": 3,
                "label_column": 1,
                "label_names": {"0": "unacceptable", "1": "acceptable"},
                "positive_label": "acceptable",
            },
        )
    )
    tasks.append(
        _task(
            "sst2",
            type=TaskType.SENTENCE_CLASSIFICATION,
            format="tsv",
            dataset="sst2",
            splits=_files("sst2", {"train": "train.tsv", "dev": "dev.tsv", "test": "test.tsv"}),
            label_field="label",
            metrics=("accuracy",),
            description="Binary movie-review sentiment (SST-2); test = the GLUE dev set.",
            reader_options={
                "header": True,
                "text_column": "sentence",
                "label_column": "label",
                "label_names": {"0": "negative", "1": "positive"},
                "positive_label": "positive",
            },
        )
    )
    tasks.append(
        _task(
            "rte",
            type=TaskType.SENTENCE_PAIR_CLASSIFICATION,
            format="tsv",
            dataset="rte",
            splits=_files(
                "rte", {"train": "train.tsv", "dev": "dev.tsv", "test_unlabeled": "test.tsv"}
            ),
            label_field="label",
            metrics=("accuracy",),
            description="Textual entailment (RTE, GLUE); test_unlabeled has hidden labels and is "
            "never scored.",
            reader_options={
                "header": True,
                "text_column": "sentence1",
                "pair_column": "sentence2",
                "label_column": "label",
                "unlabeled_value": "-1",
                "label_names": {"0": "entailment", "1": "not_entailment"},
            },
        )
    )
    tasks.append(
        _task(
            "mrpc",
            type=TaskType.SENTENCE_PAIR_CLASSIFICATION,
            format="tsv",
            dataset="mrpc",
            splits={
                **_carved("mrpc", "msr_paraphrase_train.txt", (("train", 0.9), ("dev", 0.1))),
                **_files("mrpc", {"test": "msr_paraphrase_test.txt"}),
            },
            label_field="label",
            metrics=("f1", "accuracy"),
            description="Paraphrase identification (MRPC); dev carved from train (about GLUE's "
            "408 of 4,076), pairs sharing a sentence kept together.",
            reader_options={
                "header": True,
                "text_column": "#1 String",
                "pair_column": "#2 String",
                "label_column": "Quality",
                "label_names": {"0": "not_paraphrase", "1": "paraphrase"},
                "positive_label": "paraphrase",
            },
        )
    )
    return {task.name: task for task in sorted(tasks, key=lambda t: t.name)}


#: every built-in task by name, sorted by name
BUILTIN_TASKS: Mapping[str, TaskDef] = MappingProxyType(_build())


def list_tasks() -> list[TaskDef]:
    """Return the built-in tasks, sorted by name."""
    return list(BUILTIN_TASKS.values())


def get_task(name: str, *, extra: Mapping[str, TaskDef] | None = None) -> TaskDef:
    """Return the task called ``name``: a built-in, one of ``extra`` (user tasks) or ``synth_*``.

    ``synth_*`` names come from :func:`taskgraph.tasks.synthetic.get_synthetic_task`.  An
    unknown name raises :class:`UnknownNameError` listing the known names.
    """
    if extra and name in extra:
        return extra[name]
    if name in BUILTIN_TASKS:
        return BUILTIN_TASKS[name]
    if name.startswith("synth_"):
        synthetic = _synthetic_module()
        if synthetic is not None:
            task: TaskDef = synthetic.get_synthetic_task(name)
            return task
    known = sorted({*BUILTIN_TASKS, *(extra or {})})
    raise UnknownNameError(
        f"unknown task {name!r}; known: {', '.join(known)} (and synth_* synthetic tasks)"
    )


def _synthetic_module() -> Any:
    try:
        return importlib.import_module("taskgraph.tasks.synthetic")
    except ModuleNotFoundError as error:
        if error.name != "taskgraph.tasks.synthetic":
            raise
        return None
