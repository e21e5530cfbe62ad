"""edgekit in under 40 lines: train on the shapes data, export, load, predict a file and a video."""

import sys
from pathlib import Path

import cv2

import edgekit

out = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/quickstart")
epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 25

# 1. Data: a generated folder of circles, squares and triangles (no download).
root = edgekit.datasets.make_shapes(out / "shapes", n_per_class=300, image_size=64, seed=0)
train, val, test = edgekit.ImageFolder(root, image_size=64).split(seed=0)

# 2. Train; model.keras carries its preprocessing contract.
result = edgekit.train(train, val, "small_cnn", test=test, epochs=epochs, out_dir=out / "train", verbose=0)

# 3. Export int8 TFLite and ONNX, each checked against Keras on the test split.
report = edgekit.export(result.model_path, ["tflite:int8", "onnx:int8"], calibration=train, check=test, out_dir=out)
print(report.table())

# 4. Load and predict: the contract inside the file does the preprocessing.
model = edgekit.load(report.result("tflite:int8").path)
print(test.sources[0], "->", model.predict(test.sources[0]))

# 5. A video: write a short clip of test images, then stream it through the model.
clip = out / "clip.avi"
writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 64))
for source in test.sources[:20]:
    writer.write(cv2.imread(source))
writer.release()
with model.stream(clip) as stream:
    for r in stream:
        print(f"frame {r.frame.position}: {r.classification}")
