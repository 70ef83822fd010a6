"""What is particular to each sharing architecture, and the factory's error messages."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from taskgraph.errors import ConfigError, UnknownNameError
from taskgraph.models import EncoderBundle, HeadSpec, build_model
from taskgraph.models.layerwise import run_layers
from taskgraph.models.sharing.cross_stitch import CrossStitchSharing, initial_alpha
from taskgraph.models.sharing.hierarchical import HierarchicalSharing, default_layer
from taskgraph.models.sharing.label_embedding import LabelEmbeddingClassifier, LabelEmbeddingSharing
from taskgraph.models.sharing.mmoe import MixtureOfExpertsSharing
from taskgraph.models.sharing.soft import SoftSharing
from taskgraph.tasks.types import TaskType

Batches = dict[str, dict[str, torch.Tensor]]


def _never_called() -> EncoderBundle:
    raise AssertionError("the encoder must not be loaded when the configuration is invalid")


def test_factory_rejects_unknown_names_before_loading_the_encoder(
    three_tasks: list[HeadSpec],
) -> None:
    with pytest.raises(
        UnknownNameError,
        match="unknown sharing architecture 'hardd'; known: cross_stitch, hard, hierarchical",
    ):
        build_model(sharing="hardd", encoder=_never_called, heads=three_tasks)
    with pytest.raises(
        ConfigError, match="'soft': unknown parameter 'lamda'; allowed: lambda, top_k_layers"
    ):
        build_model(sharing="soft", encoder=_never_called, heads=three_tasks, params={"lamda": 0.1})
    with pytest.raises(ConfigError, match="'hard': unknown parameter 'x'; allowed: \\(none\\)"):
        build_model(sharing="hard", encoder=_never_called, heads=three_tasks, params={"x": 1})
    with pytest.raises(ConfigError, match="at least one task head"):
        build_model(sharing="hard", encoder=_never_called, heads=[])
    with pytest.raises(ConfigError, match="'ner' is given more than once"):
        build_model(sharing="hard", encoder=_never_called, heads=[three_tasks[0], three_tasks[0]])


def test_hard_sharing_is_the_plain_encoder_and_unknown_tasks_fail(
    tiny_encoder: Callable[..., EncoderBundle], three_tasks: list[HeadSpec], batches: Batches
) -> None:
    bundle = tiny_encoder()
    model = build_model(sharing="hard", encoder=bundle, heads=three_tasks).eval()
    batch = batches["topic"]
    with torch.no_grad():
        expected = bundle.model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).last_hidden_state
        assert torch.equal(model.encode("topic", batch), expected)
    assert {id(p) for p in model.shared_parameters()} == {id(p) for p in bundle.model.parameters()}
    with pytest.raises(ConfigError, match="unknown task 'pos'; this model has: ner, deps, topic"):
        model("pos", batch)


def test_task_names_with_dots_are_allowed(
    tiny_encoder: Callable[..., EncoderBundle], batches: Batches
) -> None:
    spec = HeadSpec("ud_tr_imst.upos", TaskType.TOKEN_TAGGING, 5)
    model = build_model(sharing="soft", encoder=tiny_encoder(), heads=[spec])
    assert model("ud_tr_imst.upos", batches["ner"]).loss is not None
    assert model.shared_parameters() == []  # one task: nothing is shared
    assert model.task_parameters("ud_tr_imst.upos")


def test_hierarchical_reads_the_chosen_layer_and_owns_layers_one_task_reads(
    tiny_encoder: Callable[..., EncoderBundle], three_tasks: list[HeadSpec], batches: Batches
) -> None:
    bundle = tiny_encoder(num_hidden_layers=4)
    model = build_model(sharing="hierarchical", encoder=bundle, heads=three_tasks).eval()
    assert isinstance(model, HierarchicalSharing)
    # Defaults for 4 layers: tagging ceil(4/2) = 2, parsing ceil(8/3) = 3, sentence tasks the top.
    assert model.layer_of == {"ner": 2, "deps": 3, "topic": 4}
    batch = batches["ner"]
    with torch.no_grad():
        states = bundle.model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            output_hidden_states=True,
        ).hidden_states
        for task, layer in model.layer_of.items():
            assert torch.allclose(model.encode(task, batch), states[layer], atol=1e-6), task
    layers = bundle.model.encoder.layer
    own = {id(p) for p in model.task_parameters("topic")}
    assert {id(p) for p in layers[3].parameters()} <= own  # only the sentence task reads layer 4
    shared = {id(p) for p in model.shared_parameters()}
    assert {id(p) for p in layers[2].parameters()} <= shared  # parsing and the sentence task
    assert {id(p) for p in layers[1].parameters()} <= shared

    chosen = build_model(
        sharing="hierarchical",
        encoder=tiny_encoder(num_hidden_layers=4),
        heads=three_tasks,
        params={"tagging_layer": 1, "parsing_layer": 9, "layer:topic": 2},
    )
    assert chosen.layer_of == {"ner": 1, "deps": 4, "topic": 2}  # 9 means the top layer
    with pytest.raises(ConfigError, match="tagging_layer must be a layer number >= 1, but got 0"):
        build_model(
            sharing="hierarchical",
            encoder=tiny_encoder(),
            heads=three_tasks,
            params={"tagging_layer": 0},
        )
    with pytest.raises(ConfigError, match="unknown parameter 'layer:pos'"):
        build_model(
            sharing="hierarchical",
            encoder=_never_called,
            heads=three_tasks,
            params={"layer:pos": 1},
        )


def test_hierarchical_default_layers_round_up_for_an_odd_layer_count() -> None:
    # ceil(N/2) for tagging, ceil(2N/3) for parsing, N for sentence tasks (docs/models.md).
    assert default_layer(TaskType.TOKEN_TAGGING, 5) == 3
    assert default_layer(TaskType.DEPENDENCY_PARSING, 5) == 4
    assert default_layer(TaskType.SENTENCE_CLASSIFICATION, 5) == 5
    assert default_layer(TaskType.TOKEN_TAGGING, 1) == 1
    assert default_layer(TaskType.DEPENDENCY_PARSING, 1) == 1


def test_soft_sharing_penalty_is_lambda_times_pairwise_squared_distance(
    tiny_encoder: Callable[..., EncoderBundle], three_tasks: list[HeadSpec], batches: Batches
) -> None:
    model = build_model(
        sharing="soft",
        encoder=tiny_encoder(num_hidden_layers=3),
        heads=three_tasks,
        params={"lambda": 0.5, "top_k_layers": 2},
    )
    assert isinstance(model, SoftSharing)
    assert len(model.shared_layers) == 1 and all(len(model.column(t)) == 2 for t in model.tasks)
    assert float(model.regularization_loss().detach()) == 0.0  # copies start equal
    with torch.no_grad():
        for task in model.tasks:
            for parameter in model.column(task).parameters():
                parameter.add_(0.01 * torch.randn_like(parameter))
    columns = [list(model.column(t).parameters()) for t in model.tasks]
    with torch.no_grad():
        pairwise = sum(
            float(((columns[i][k] - columns[j][k]) ** 2).sum())
            for i in range(3)
            for j in range(i + 1, 3)
            for k in range(len(columns[0]))
        )
    penalty = model.regularization_loss()
    assert float(penalty.detach()) == pytest.approx(0.5 * pairwise, rel=1e-4)
    penalty.backward()  # pulls every copy towards the others
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for column in columns for p in column)
    with pytest.raises(ConfigError, match="lambda must be a number >= 0, but got -1"):
        build_model(
            sharing="soft", encoder=tiny_encoder(), heads=three_tasks, params={"lambda": -1}
        )
    with pytest.raises(ConfigError, match="top_k_layers must be an integer >= 1, but got 0"):
        build_model(
            sharing="soft", encoder=tiny_encoder(), heads=three_tasks, params={"top_k_layers": 0}
        )


def test_soft_sharing_penalises_a_model_of_two_tasks(
    tiny_encoder: Callable[..., EncoderBundle], three_tasks: list[HeadSpec]
) -> None:
    two = [spec for spec in three_tasks if spec.task in ("ner", "topic")]
    model = build_model(sharing="soft", encoder=tiny_encoder(), heads=two, params={"lambda": 2.0})
    assert isinstance(model, SoftSharing) and list(model.tasks) == ["ner", "topic"]
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in model.column("topic").parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
        distance = sum(
            float(((a - b) ** 2).sum())
            for a, b in zip(
                model.column("ner").parameters(), model.column("topic").parameters(), strict=True
            )
        )
    assert distance > 0
    assert float(model.regularization_loss().detach()) == pytest.approx(2.0 * distance, rel=1e-4)


def test_cross_stitch_alpha_starts_near_identity_and_identity_means_independent_columns(
    tiny_encoder: Callable[..., EncoderBundle], three_tasks: list[HeadSpec], batches: Batches
) -> None:
    assert torch.allclose(
        initial_alpha(3, 0.8), torch.tensor([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])
    )
    model = build_model(sharing="cross_stitch", encoder=tiny_encoder(), heads=three_tasks).eval()
    assert isinstance(model, CrossStitchSharing)
    assert len(model.alphas) == 2 and torch.allclose(
        model.alphas[0].diagonal(), torch.full((3,), 0.9)
    )
    batch = batches["deps"]
    with torch.no_grad():
        for parameter in model.columns.parameters():  # columns start as equal copies
            parameter.add_(0.05 * torch.randn_like(parameter))
        mixed = model.encode("deps", batch)
        for alpha in model.alphas:
            alpha.copy_(torch.eye(3))
        hidden, bias = model.encode_shared(batch)
        alone = run_layers(model.column("deps"), hidden, bias)
        assert torch.allclose(model.encode("deps", batch), alone, atol=1e-6)
        assert not torch.allclose(mixed, alone, atol=1e-4)  # with mixing the columns interact
    with pytest.raises(ConfigError, match=r"alpha_self must be in \(0, 1\), but got 1.5"):
        build_model(
            sharing="cross_stitch",
            encoder=tiny_encoder(),
            heads=three_tasks,
            params={"alpha_self": 1.5},
        )


def test_a_single_task_cross_stitch_model_has_fixed_alphas_and_runs_its_column_alone(
    tiny_encoder: Callable[..., EncoderBundle], batches: Batches
) -> None:
    # A baseline trial that drew cross_stitch: a trainable 1 x 1 alpha would be a free output
    # scale per layer, trained at 100x the rate without decay.
    topic = HeadSpec("topic", TaskType.SENTENCE_CLASSIFICATION, 3)
    model = build_model(sharing="cross_stitch", encoder=tiny_encoder(), heads=[topic]).eval()
    assert isinstance(model, CrossStitchSharing)
    assert model.learning_rate_scales() == {}
    assert list(model.alphas.parameters()) == []
    alphas = list(model.alphas)
    assert len(model.alphas) == len(alphas) == 2
    assert all(torch.equal(alpha, torch.ones(1, 1)) for alpha in alphas)
    parameters = {id(p) for p in model.parameters()}
    assert not any(id(alpha) in parameters for alpha in alphas)
    # The state dict keeps the keys a trainable alpha had.
    state = model.state_dict()
    assert [key for key in state if key.startswith("alphas.")] == ["alphas.0", "alphas.1"]
    batch = batches["topic"]
    with torch.no_grad():
        hidden, bias = model.encode_shared(batch)
        assert torch.equal(
            model.encode("topic", batch), run_layers(model.column("topic"), hidden, bias)
        )
    model.train()
    model("topic", batch).loss.backward()
    assert all(alpha.grad is None for alpha in model.alphas)


def _cross_stitch_with_perturbed_columns(
    tiny_encoder: Callable[..., EncoderBundle], three_tasks: list[HeadSpec], top_k_layers: int
) -> tuple[CrossStitchSharing, list[str]]:
    model = build_model(
        sharing="cross_stitch",
        encoder=tiny_encoder(),
        heads=three_tasks,
        params={"top_k_layers": top_k_layers},
    ).eval()
    assert isinstance(model, CrossStitchSharing)
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in model.columns.parameters():  # columns start as equal copies
            parameter.add_(0.05 * torch.randn_like(parameter))
    return model, list(model.specs)


#: the one column each task reads under :func:`cyclic_alpha`
CYCLIC_READS = {"deps": "ner", "ner": "topic", "topic": "deps"}


def cyclic_alpha(names: list[str]) -> torch.Tensor:
    """Row t names the one column task t reads: deps <- ner, ner <- topic, topic <- deps."""
    alpha = torch.zeros(3, 3)
    for reader, source in CYCLIC_READS.items():
        alpha[names.index(reader), names.index(source)] = 1.0
    return alpha


def test_cross_stitch_mixes_row_t_of_alpha_into_task_t(
    tiny_encoder: Callable[..., EncoderBundle], three_tasks: list[HeadSpec], batches: Batches
) -> None:
    # An asymmetric alpha: reading a column instead of a row picks another task's column.
    model, names = _cross_stitch_with_perturbed_columns(tiny_encoder, three_tasks, 1)
    batch = batches["deps"]
    with torch.no_grad():
        model.alphas[0].copy_(cyclic_alpha(names))
        hidden, bias = model.encode_shared(batch)
        expected = run_layers(model.column("ner"), hidden, bias)
        assert torch.allclose(model.encode("deps", batch), expected, atol=1e-6)


def test_cross_stitch_intermediate_mix_uses_rows(
    tiny_encoder: Callable[..., EncoderBundle], three_tasks: list[HeadSpec], batches: Batches
) -> None:
    # The mix after the first layer feeds deps' second layer with ner's first-layer output.
    model, names = _cross_stitch_with_perturbed_columns(tiny_encoder, three_tasks, 2)
    batch = batches["deps"]
    with torch.no_grad():
        model.alphas[0].copy_(cyclic_alpha(names))
        model.alphas[1].copy_(torch.eye(3))
        hidden, bias = model.encode_shared(batch)
        after_first = run_layers(model.column("ner")[:1], hidden, bias)
        expected = run_layers(model.column("deps")[1:], after_first, bias)
        assert torch.allclose(model.encode("deps", batch), expected, atol=1e-6)


def test_label_embedding_scores_against_one_shared_label_matrix(
    tiny_encoder: Callable[..., EncoderBundle], three_tasks: list[HeadSpec], batches: Batches
) -> None:
    model = build_model(
        sharing="label_embedding",
        encoder=tiny_encoder(),
        heads=three_tasks,
        params={"label_dim": 8},
    )
    assert isinstance(model, LabelEmbeddingSharing)
    space = model.label_space
    assert space is not None and space.labels.shape == (5 + 3, 8)  # ner's 5 tags, topic's 3 classes
    assert model.label_offsets == {"ner": 0, "topic": 5}
    classifier = model.head("topic").classifier
    assert isinstance(classifier, LabelEmbeddingClassifier) and classifier.space is space
    assert not hasattr(model.head("deps"), "classifier")  # parsing keeps its biaffine head
    representation = torch.randn(2, model.hidden_size)
    expected = space.projection(representation) @ space.labels[5:8].T
    assert torch.allclose(classifier(representation), expected)
    shared = {id(p) for p in model.shared_parameters()}
    assert {id(space.labels), id(space.projection.weight)} <= shared
    only_parsing = build_model(
        sharing="label_embedding",
        encoder=tiny_encoder(),
        heads=[three_tasks[1]],
        params={"label_dim": 8},
    )
    assert only_parsing.label_space is None


def test_label_embedding_task_trains_the_shared_projection_and_only_its_own_label_rows(
    tiny_encoder: Callable[..., EncoderBundle], three_tasks: list[HeadSpec], batches: Batches
) -> None:
    model = build_model(
        sharing="label_embedding",
        encoder=tiny_encoder(),
        heads=three_tasks,
        params={"label_dim": 8},
    )
    assert isinstance(model, LabelEmbeddingSharing) and model.label_space is not None
    space = model.label_space
    model("topic", batches["topic"]).loss.backward()
    assert space.projection.weight.grad is not None and space.projection.weight.grad.abs().sum() > 0
    grad = space.labels.grad
    assert grad is not None
    assert grad[5:8].abs().sum() > 0  # topic's own three rows
    assert torch.count_nonzero(grad[:5]) == 0  # ner's rows get nothing from topic's loss


def test_mmoe_mixes_shared_experts_with_one_gate_per_task(
    tiny_encoder: Callable[..., EncoderBundle], three_tasks: list[HeadSpec], batches: Batches
) -> None:
    model = build_model(
        sharing="mmoe",
        encoder=tiny_encoder(num_hidden_layers=3),
        heads=three_tasks,
        params={"num_experts": 3},
    ).eval()
    assert isinstance(model, MixtureOfExpertsSharing)
    assert model.params["top_k_layers"] == 1  # ceil(3 / 3)
    assert len(model.shared_layers) == 2 and model.column_owners() == [
        "expert0",
        "expert1",
        "expert2",
    ]
    batch = batches["topic"]
    with torch.no_grad():
        shared, bias = model.encode_shared(batch)
        expert = run_layers(model.column("expert0"), shared, bias)
        # Experts start as copies, so any convex mix of them is the expert itself.
        assert torch.allclose(model.encode("topic", batch), expert, atol=1e-5)
        for parameter in model.columns.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
        outputs = torch.stack(
            [run_layers(model.column(o), shared, bias) for o in model.column_owners()], dim=-1
        )
        gate = torch.softmax(model.gates["topic"](shared), dim=-1)
        assert torch.allclose(
            model.encode("topic", batch), (outputs * gate.unsqueeze(-2)).sum(-1), atol=1e-5
        )
        assert not torch.allclose(
            model.encode("topic", batch), model.encode("ner", batch), atol=1e-4
        )
    own = {id(p) for p in model.task_parameters("ner")}
    assert {id(p) for p in model.gates["ner"].parameters()} <= own
    with pytest.raises(ConfigError, match="num_experts must be an integer >= 1, but got 0"):
        build_model(
            sharing="mmoe", encoder=tiny_encoder(), heads=three_tasks, params={"num_experts": 0}
        )


@pytest.mark.parametrize("name", ["hard", "soft"])
def test_qa_and_masked_lm_tasks_in_a_model(
    name: str, tiny_encoder: Callable[..., EncoderBundle]
) -> None:
    bundle = tiny_encoder()
    specs = [HeadSpec("qa", TaskType.EXTRACTIVE_QA, 0), HeadSpec("mlm", TaskType.MASKED_LM, 0)]
    model = build_model(sharing=name, encoder=bundle, heads=specs)
    pair = bundle.tokenizer(
        ["Where is Ankara?"] * 2,
        ["Ankara is in Turkey.", "No idea."],
        padding=True,
        return_tensors="pt",
    )
    inputs = {key: pair[key] for key in ("input_ids", "attention_mask", "token_type_ids")}
    gold = {"start_positions": torch.tensor([8, 0]), "end_positions": torch.tensor([9, 0])}
    assert torch.isfinite(model("qa", {**inputs, **gold}).loss)
    predictions = model.predict("qa", inputs, top_k=2)
    assert all(len(p.spans) == 2 for p in predictions)
    context = (inputs["token_type_ids"] == 1) & (inputs["attention_mask"] == 1)
    for row, prediction in enumerate(predictions):
        assert all(
            bool(context[row, s]) and bool(context[row, e]) and s <= e
            for s, e, _ in prediction.spans
        )
    # The masked-LM head is tied to the (shared) input embeddings of the architecture.
    assert model.head("mlm").decoder_weight is model.word_embeddings().weight
    labels = torch.full_like(inputs["input_ids"], -100)
    labels[:, 2] = inputs["input_ids"][:, 2]
    masked = {
        **inputs,
        "input_ids": inputs["input_ids"].masked_fill(
            labels != -100, bundle.tokenizer.mask_token_id
        ),
    }
    output = model("mlm", {**masked, "labels": labels})
    assert torch.isfinite(output.loss)
    assert [len(p) for p in model.predict("mlm", {**masked, "labels": labels})] == [1, 1]
