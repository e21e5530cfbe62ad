"""Run MediaPipe (0.10.14, in its own cached virtualenv) on edgekit's files: the other side of test_mediapipe.py.

    python mediapipe_probe.py classify JOB.json OUT.json
        JOB: {"models": [paths], "images": [paths]}; OUT: {model: [[[label, score], ...] per image]}
    python mediapipe_probe.py detect JOB.json OUT.json
        JOB: {"models": [paths], "images": [paths]}; OUT: {model: [[[label, index, score, x, y, w, h], ...] per image]}
        MediaPipe's ObjectDetector with its defaults (score threshold from the model's metadata, every result)
    python mediapipe_probe.py faces JOB.json OUT.json
        JOB: {"images": [paths]}; OUT: [[[score, x0, y0, x1, y1, [[x, y] * 6]], ...] per image], pixels
        MediaPipe's own face detection (the legacy solution: face_detection_short_range.tflite from its wheel)
    python mediapipe_probe.py segment JOB.json OUT.json
        JOB: {"models": [paths], "images": [paths]}; OUT: {model: [category mask (rows of class ids) per image]}
        MediaPipe's ImageSegmenter with its category mask, at each image's size
    python mediapipe_probe.py write-metadata IN.tflite OUT.tflite MEAN STD LABEL [LABEL ...]
        MediaPipe's own metadata writer (image classifier), as another tool would use it.

Imports only MediaPipe and the standard library: it runs where edgekit and TensorFlow are not installed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def classify(job_path: str, out_path: str) -> None:
    import mediapipe as mp
    from mediapipe.tasks import python as tasks
    from mediapipe.tasks.python import vision

    job = json.loads(Path(job_path).read_text())
    results = {}
    for model in job["models"]:
        options = vision.ImageClassifierOptions(base_options=tasks.BaseOptions(model_asset_path=model), max_results=-1)
        with vision.ImageClassifier.create_from_options(options) as classifier:
            rows = []
            for image in job["images"]:
                categories = classifier.classify(mp.Image.create_from_file(image)).classifications[0].categories
                rows.append([[c.category_name, c.score] for c in sorted(categories, key=lambda c: c.index)])
            results[model] = rows
    Path(out_path).write_text(json.dumps(results))


def faces(job_path: str, out_path: str) -> None:
    import cv2
    import mediapipe as mp

    job = json.loads(Path(job_path).read_text())
    rows = []
    with mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5) as detector:
        for image_path in job["images"]:
            image = cv2.cvtColor(cv2.imread(image_path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            height, width = image.shape[:2]
            found = []
            for detection in detector.process(image).detections or []:
                box = detection.location_data.relative_bounding_box
                x0, y0 = box.xmin * width, box.ymin * height
                points = [[p.x * width, p.y * height] for p in detection.location_data.relative_keypoints]
                found.append([detection.score[0], x0, y0, x0 + box.width * width, y0 + box.height * height, points])
            rows.append(found)
    Path(out_path).write_text(json.dumps(rows))


def detect(job_path: str, out_path: str) -> None:
    import mediapipe as mp
    from mediapipe.tasks import python as tasks
    from mediapipe.tasks.python import vision

    job = json.loads(Path(job_path).read_text())
    results = {}
    for model in job["models"]:
        options = vision.ObjectDetectorOptions(base_options=tasks.BaseOptions(model_asset_path=model), max_results=-1)
        with vision.ObjectDetector.create_from_options(options) as detector:
            rows = []
            for image in job["images"]:
                found = detector.detect(mp.Image.create_from_file(image)).detections
                rows.append(
                    [
                        [
                            d.categories[0].category_name,
                            d.categories[0].index,
                            d.categories[0].score,
                            d.bounding_box.origin_x,
                            d.bounding_box.origin_y,
                            d.bounding_box.width,
                            d.bounding_box.height,
                        ]
                        for d in found
                    ]
                )
            results[model] = rows
    Path(out_path).write_text(json.dumps(results))


def segment(job_path: str, out_path: str) -> None:
    import mediapipe as mp
    import numpy as np
    from mediapipe.tasks import python as tasks
    from mediapipe.tasks.python import vision

    job = json.loads(Path(job_path).read_text())
    results = {}
    for model in job["models"]:
        options = vision.ImageSegmenterOptions(
            base_options=tasks.BaseOptions(model_asset_path=model), output_category_mask=True
        )
        with vision.ImageSegmenter.create_from_options(options) as segmenter:
            masks = []
            for image in job["images"]:
                found = segmenter.segment(mp.Image.create_from_file(image))
                masks.append(np.asarray(found.category_mask.numpy_view()).astype(int).tolist())
            results[model] = masks
    Path(out_path).write_text(json.dumps(results))


def write_metadata(source: str, target: str, mean: str, std: str, *labels: str) -> None:
    from mediapipe.tasks.python.metadata.metadata_writers import image_classifier, metadata_writer

    writer = image_classifier.MetadataWriter.create(
        Path(source).read_bytes(),
        input_norm_mean=[float(mean)],
        input_norm_std=[float(std)],
        labels=metadata_writer.Labels().add(list(labels)),
    )
    model, _ = writer.populate()
    Path(target).write_bytes(model)


if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    commands = {"classify": classify, "detect": detect, "faces": faces, "segment": segment}
    {**commands, "write-metadata": write_metadata}[command](*arguments)
