"""Pruning and distillation on the shapes data, as one table (about 15 minutes on 2 cores).

MobileNetV2 (64x64, from scratch on 2000 shapes per class): dense, 50% and 80% pruned, each
as TFLite float32 and int8, with file size, gzip size and test accuracy. From scratch it
needs the larger set: on 400 per class it memorizes the training images and stays near
chance. Then, on 400 per class (where a teacher has something to add), a tiny CNN trained
alone and the same CNN distilled from a trained small_cnn teacher, seeds fixed.

Targets: the 80% pruned float32 TFLite file <= 0.45x the dense one with accuracy within 2
points; the distilled student beats the same student trained alone on the test split.
Exits 1 when a target is missed; the last line has the figures.

    .venv/bin/python bench/optimize.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SIZE_TARGET = 0.45
DROP_TARGET = 2.0
IMAGE_SIZE = 64
MOBILENET_PER_CLASS, MOBILENET_EPOCHS = 2000, 18  # takes off after 7-9 epochs, ~19 s each
SMALL_PER_CLASS = 400


def _student(num_classes: int):
    from edgekit._tf import keras

    k = keras()
    inputs = k.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    x = inputs
    for filters in (16, 32):
        x = k.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = k.layers.BatchNormalization(momentum=0.9)(x)
        x = k.layers.MaxPooling2D(2)(k.layers.ReLU()(x))
    x = k.layers.GlobalMaxPooling2D()(k.layers.Conv2D(48, 3, activation="relu")(x))  # max: where a corner is, not how much
    return k.Model(inputs, k.layers.Dense(num_classes, activation="softmax")(x), name="tiny_student")


def main() -> int:
    import edgekit
    from edgekit.tables import text_table

    rows, figures = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        root = edgekit.datasets.make_shapes(out / "shapes_big", n_per_class=MOBILENET_PER_CLASS, image_size=IMAGE_SIZE, seed=0)
        train, val, test = edgekit.ImageFolder(root, image_size=IMAGE_SIZE).split(val=0.15, test=0.15, seed=0)

        dense = edgekit.train(train, val, "mobilenetv2", test=test, epochs=MOBILENET_EPOCHS, patience=MOBILENET_EPOCHS,
                              out_dir=out / "dense", seed=0, verbose=0)
        models = {"dense": dense.model_path}
        for sparsity in (0.5, 0.8):
            pruned = edgekit.prune(dense.model_path, train, val, sparsity=sparsity, epochs=4, test=test,
                                   out_dir=out / f"pruned{sparsity}", verbose=0)
            models[f"{sparsity:.0%} pruned"] = pruned.model_path
        for name, path in models.items():
            report = edgekit.export(path, ["tflite:fp32", "tflite:int8"], calibration=train, check=test,
                                    out_dir=out / "export" / name.replace(" ", "_").replace("%", ""), progress=False)
            for result in report.results:
                figures[name, result.target] = result
                rows.append([f"mobilenetv2 {name}", result.target, f"{result.size_bytes / 1024:.0f} kB",
                             f"{result.gzip_bytes / 1024:.0f} kB", f"{result.accuracy * 100:.1f}%"])

        root = edgekit.datasets.make_shapes(out / "shapes", n_per_class=SMALL_PER_CLASS, image_size=IMAGE_SIZE, seed=0)
        train, val, test = edgekit.ImageFolder(root, image_size=IMAGE_SIZE).split(val=0.15, test=0.15, seed=0)
        teacher = edgekit.train(train, val, "small_cnn", test=test, epochs=30, patience=6, out_dir=out / "teacher", seed=0, verbose=0)
        small_pruned = edgekit.prune(teacher.model_path, train, val, sparsity=0.8, epochs=10, test=test,
                                     out_dir=out / "small_pruned", verbose=0)
        for name, path in (("small_cnn dense", teacher.model_path), ("small_cnn 80% pruned", small_pruned.model_path)):
            report = edgekit.export(path, ["tflite:fp32"], check=test, out_dir=out / "export" / name.replace(" ", "_").replace("%", ""),
                                    progress=False)
            result = report.results[0]
            figures[name, result.target] = result
            rows.append([name, result.target, f"{result.size_bytes / 1024:.0f} kB", f"{result.gzip_bytes / 1024:.0f} kB",
                         f"{result.accuracy * 100:.1f}%"])
        preprocessing = teacher.preprocessing
        alone = edgekit.train(train, val, _student(len(train.labels)), test=test, epochs=30, patience=30, preprocessing=preprocessing,
                              out_dir=out / "alone", seed=0, verbose=0)
        distilled = edgekit.distill(teacher.model_path, _student(len(train.labels)), train, val, temperature=4.0, alpha=0.3,
                                    epochs=30, patience=30, test=test, preprocessing=preprocessing, out_dir=out / "distilled",
                                    seed=0, verbose=0)
        for name, result in (("small_cnn teacher", teacher), ("tiny CNN alone", alone), ("tiny CNN distilled", distilled)):
            rows.append([name, "keras", "-", "-", f"{result.metrics['accuracy']['test'] * 100:.1f}%"])

    print(text_table(["model", "artifact", "size", "gzip", "test accuracy"], rows))
    dense_fp32, pruned_fp32 = figures["dense", "tflite:fp32"], figures["80% pruned", "tflite:fp32"]
    size_ratio = pruned_fp32.size_bytes / dense_fp32.size_bytes
    drop = (dense_fp32.accuracy - pruned_fp32.accuracy) * 100
    gain = (distilled.metrics["accuracy"]["test"] - alone.metrics["accuracy"]["test"]) * 100
    chance = 1 / len(train.labels)
    learned = dense_fp32.accuracy > chance + 0.10 and alone.metrics["accuracy"]["test"] > chance + 0.10
    if not learned:
        print(f"the dense model or the student stayed near chance ({chance:.1%}): the comparison below means nothing")
    met = learned and size_ratio <= SIZE_TARGET and drop <= DROP_TARGET and gain > 0
    small_drop = (figures["small_cnn dense", "tflite:fp32"].accuracy - figures["small_cnn 80% pruned", "tflite:fp32"].accuracy) * 100
    print(f"small_cnn 80% pruned: accuracy drop {small_drop:+.1f} points")
    print(f"dense {dense_fp32.accuracy:.1%} (chance {chance:.1%}); "
          f"80% pruned fp32 TFLite {size_ratio:.3f}x dense (target <= {SIZE_TARGET}), accuracy drop {drop:+.1f} points "
          f"(target <= {DROP_TARGET}); distilled student {gain:+.1f} points vs alone (target > 0)")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
