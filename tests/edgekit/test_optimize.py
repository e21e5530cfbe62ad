"""Pruning and knowledge distillation on Keras 3, and pruned models through every format."""

import numpy as np
import pytest

import edgekit
from edgekit.errors import TrainingError
from edgekit.optimize.pruning import magnitude_mask, prunable_kernels

# a student taught by the trained small CNN alone (alpha=0) on 480 shuffled images: 98.3% test accuracy from a Keras
# or a TFLite int8 teacher; with each image given its neighbour's teacher row, 46.1% (2-core host, 2026-12-07)
DISTILLED_ACCURACY = 0.9


@pytest.fixture(scope="module")
def pruned(trained, shapes_splits, tmp_path_factory):
    """The trained small CNN fine-tuned for 6 epochs while pruned to 80%."""
    train, val, test = shapes_splits
    return edgekit.prune(
        trained.model_path,
        train,
        val,
        sparsity=0.8,
        schedule="polynomial",
        epochs=6,
        test=test,
        out_dir=tmp_path_factory.mktemp("pruned"),
        verbose=0,
    )


def test_magnitude_mask_zeroes_exactly_the_smallest():
    values = np.array([[0.5, -0.1], [0.05, -2.0]])
    np.testing.assert_array_equal(magnitude_mask(values, 0.5), [[1, 0], [0, 1]])
    assert magnitude_mask(np.arange(1, 101.0), 0.8).sum() == 20


def test_every_kernel_is_exactly_zero_at_the_requested_sparsity(pruned):
    print(pruned.table())
    for (layer, variable), report in zip(prunable_kernels(pruned.model), pruned.layers):
        weights = np.asarray(variable)
        assert report.name == layer.name and report.weights == weights.size
        assert int(np.sum(weights == 0)) == report.zeros == round(0.8 * weights.size)
    assert pruned.sparsity == pytest.approx(0.8, abs=0.002)
    kinds = {layer.kind for layer in pruned.layers}
    assert kinds == {"Conv2D", "Dense"}


def test_pruned_model_keeps_its_accuracy_and_file(pruned, trained):
    before = trained.metrics["accuracy"]["test"]
    after = pruned.metrics["pruning"]["accuracy_after_pruning"]
    print(f"small_cnn test accuracy dense {before:.3f}, 80% pruned {after:.3f}")
    assert after >= before - 0.10  # 6 epochs at 80% on a 136k-weight CNN; bench/optimize.py measures MobileNetV2
    reloaded, contract = edgekit.load_keras(pruned.model_path)
    assert contract.labels == trained.contract.labels
    assert np.sum(np.asarray(prunable_kernels(reloaded)[0][1]) == 0) == pruned.layers[0].zeros


def test_pruned_model_exports_to_every_format_with_the_same_bars(pruned, exported, shapes_splits, tmp_path):
    train, _, test = shapes_splits
    targets = ["tflite:fp32", "tflite:int8", "onnx:fp32", "onnx:int8", "coreml:fp16", "coreml:int8"]
    report = edgekit.export(pruned.model_path, targets, calibration=train, check=test, out_dir=tmp_path, progress=False)
    print(report.table())
    for target in targets:
        result = report.result(target)
        assert result.status == "ok", (target, result.error)
        if target.endswith(("fp32", "fp16")):
            assert result.agreement >= 0.99
        else:  # the dense model's int8 bars (tests/integration/test_quality.py)
            assert abs(result.accuracy_delta) <= 1.5 and result.agreement >= 0.95, result
    assert any("EXPERIMENTAL_SPARSITY" in note for note in report.result("tflite:fp32").notes)
    dense = exported  # the same small CNN before pruning
    assert report.result("tflite:fp32").size_bytes < 0.45 * dense.result("tflite:fp32").size_bytes  # stored sparse
    assert (
        report.result("tflite:int8").gzip_bytes < 0.8 * dense.result("tflite:int8").gzip_bytes
    )  # stored dense: zeros gzip


def test_prune_refuses_bad_arguments(trained, shapes_splits, tmp_path):
    train, val, _ = shapes_splits
    with pytest.raises(TrainingError, match="sparsity must be between 0 and 1"):
        edgekit.prune(trained.model_path, train, val, sparsity=1.2, out_dir=tmp_path)
    with pytest.raises(TrainingError, match="unknown pruning schedule 'cubic'; valid: constant, polynomial"):
        edgekit.prune(trained.model_path, train, val, schedule="cubic", out_dir=tmp_path)


@pytest.fixture(scope="module")
def distill_split(shapes_splits):
    """480 training images and the validation split in shuffled order: neighbours are of different classes about two
    times in three, so a teacher row given to the wrong image teaches the wrong class (in folder order a neighbour is
    nearly always alike, and a shifted validation split would still pick the epoch that learned most)."""
    train, val, test = shapes_splits
    rng = np.random.default_rng(1)
    return train.subset(rng.permutation(len(train))[:480]), val.subset(rng.permutation(len(val))), test


def _student(trained):
    """The teacher's own features, frozen, under a zeroed classifier: a student that learns in a few epochs exactly
    what its targets say, so its accuracy shows whether each image was given its own teacher row."""
    from edgekit.keras_io import load_keras

    student, _ = load_keras(trained.model_path)
    for layer in student.layers:
        layer.trainable = layer.name == "scores"
    head = student.get_layer("scores")
    head.set_weights([np.zeros_like(w) for w in head.get_weights()])
    return student


def _distilled_accuracy(teacher, trained, distill_split, tmp_path) -> float:
    """Test accuracy of a student taught by `teacher` alone (alpha=0: the hard labels carry no weight)."""
    train, val, test = distill_split
    result = edgekit.distill(
        teacher,
        _student(trained),
        train,
        val,
        temperature=2.0,
        alpha=0.0,
        epochs=3,
        patience=3,
        test=test,
        out_dir=tmp_path,
        verbose=0,
    )
    losses = result.history["loss"]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert set(result.metrics["accuracy"]) == {"train", "val", "test"}  # bench/optimize.py measures what it buys
    return result.metrics["accuracy"]["test"]


@pytest.mark.parametrize("teacher_kind", ["keras", "tflite"])
def test_distillation_learns_from_a_keras_or_exported_teacher(teacher_kind, trained, exported, distill_split, tmp_path):
    """With alpha=0 the student sees only the teacher's scores: it learns the task only if each image gets its own
    row."""
    teacher = trained.model_path if teacher_kind == "keras" else exported.result("tflite:int8").path
    assert _distilled_accuracy(teacher, trained, distill_split, tmp_path) >= DISTILLED_ACCURACY


def test_a_teacher_whose_rows_are_shifted_by_one_image_teaches_measurably_worse(
    trained, distill_split, tmp_path, monkeypatch
):
    """The bar above can fail: each image given its neighbour's teacher scores leaves the student near chance."""
    from edgekit.training import classification

    aligned = classification.teacher_scores
    monkeypatch.setattr(classification, "teacher_scores", lambda *a, **k: np.roll(aligned(*a, **k), 1, axis=0))
    assert _distilled_accuracy(trained.model_path, trained, distill_split, tmp_path) < DISTILLED_ACCURACY - 0.25


def test_teacher_scores_are_the_teachers_own_answers_image_by_image(exported, distill_split):
    from edgekit.training.soft_targets import teacher_scores

    train = distill_split[0].sample(40, seed=3)
    teacher = exported.result("tflite:fp32").path
    with edgekit.load(teacher) as model:
        scores = teacher_scores(teacher, train, model.preprocessing)
        for row, source in zip(scores, train.sources):
            expected = dict(model.predict(source, top_k=3).top_k)
            np.testing.assert_allclose(row, [expected[label] for label in model.labels], atol=1e-6)


def test_distillation_loss_numbers():
    from edgekit.training.soft_targets import distillation_loss

    labels = np.array([[1.0, 0.0, 0.0]], np.float32)
    teacher = np.array([[0.7, 0.2, 0.1]], np.float32)
    student = np.array([[0.6, 0.3, 0.1]], np.float32)
    y_true = np.concatenate([labels, teacher], axis=1)
    hard_only = float(np.asarray(distillation_loss(3, 4.0, 1.0)(y_true, student))[0])
    assert hard_only == pytest.approx(-np.log(0.6), rel=1e-5)
    soft = lambda p: np.exp(np.log(p) / 4.0) / np.exp(np.log(p) / 4.0).sum()  # noqa: E731
    kl = float(np.sum(soft(teacher[0]) * np.log(soft(teacher[0]) / soft(student[0]))))
    soft_only = float(np.asarray(distillation_loss(3, 4.0, 0.0)(y_true, student))[0])
    assert soft_only == pytest.approx(16.0 * kl, rel=1e-3)  # float32, probabilities clipped at 1e-7
    same = np.concatenate([labels, student], axis=1)
    assert float(np.asarray(distillation_loss(3, 4.0, 0.0)(same, student))[0]) == pytest.approx(0.0, abs=1e-6)


def test_distillation_refuses_a_teacher_with_other_labels(trained, shapes_splits, tmp_path):
    from edgekit.training.soft_targets import teacher_scores

    train = shapes_splits[0]
    import dataclasses

    subset = train.subset(np.arange(8))
    relabelled = dataclasses.replace(subset, labels=tuple(reversed(subset.labels)))
    with pytest.raises(TrainingError, match="the teacher's labels .* differ from the dataset's"):
        teacher_scores(trained.model_path, relabelled, trained.preprocessing)
