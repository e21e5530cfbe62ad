"""Standard TFLite metadata (TFLite Support's `metadata_schema.fbs`): write it, read it, keep it.

MediaPipe Tasks, the TFLite Support library and Android Studio's model binding read a
`TFLITE_METADATA` buffer: the model's name and version, the input's colour space and
normalization (mean/std), and which associated file labels the output axis. Associated files
live in a zip archive appended after the flatbuffer. edgekit writes that metadata beside its
own contract, derives a contract from it for third-party models, and keeps it (with the zip)
whenever it rewrites a file.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from typing import Any

from runtimes.contract import ColorOrder, Layout, ModelContract, Preprocessing, ResizeMode
from runtimes.errors import ContractError

STANDARD_METADATA_NAME = "TFLITE_METADATA"
METADATA_IDENTIFIER = b"M001"
MIN_PARSER_VERSION = "1.0.0"  # every field written here exists since schema 1.0.0
LABELS_FILE = "labels.txt"


def _schema() -> Any:
    from runtimes.deps import require

    require("flatbuffers", extra="runtime", package="flatbuffers")
    from runtimes.metadata import tflite_schema_py_generated as schema

    return schema


def normalization(spec: Preprocessing) -> tuple[list[float], list[float]]:
    """Per-channel (mean, std) on 0..255 pixels that give exactly the contract's tensor.

    The contract computes ((p * scale + offset) - m) / s; that is (p - mean') / std' with
    mean' = (m - offset) / scale and std' = s / scale.
    """
    channels = spec.channels
    means = spec.mean or (0.0,) * channels
    stds = spec.std or (1.0,) * channels
    return ([(m - spec.offset) / spec.scale for m in means], [s / spec.scale for s in stds])


def standard_limits(spec: Preprocessing) -> list[str]:
    """What the standard metadata cannot say about this contract (consumers other than edgekit mis-read it)."""
    problems = []
    if spec.color_order is ColorOrder.BGR:
        problems.append("BGR colour order (standard metadata knows RGB and GRAYSCALE)")
    if spec.resize is not ResizeMode.STRETCH:
        problems.append(f"{spec.resize.value} resize (standard consumers stretch the image)")
    if spec.layout is not Layout.NHWC:
        problems.append("NCHW layout (standard image inputs are NHWC)")
    return problems


def _labels_file(schema: Any, kind: int, description: str) -> Any:
    labels = schema.AssociatedFileT()
    labels.name = LABELS_FILE
    labels.description = description
    labels.type = kind
    return labels


def _tensor(
    schema: Any, name: str, description: str, content_type: int, properties: Any, files: list[Any] | None = None
) -> Any:
    content = schema.ContentT()
    content.contentPropertiesType = content_type
    content.contentProperties = properties
    tensor = schema.TensorMetadataT()
    tensor.name, tensor.description, tensor.content = name, description, content
    if files:
        tensor.associatedFiles = files
    return tensor


def _scores_metadata(schema: Any, contract: ModelContract) -> Any:
    """A classifier's score vector: one value per line of labels.txt."""
    files = [
        _labels_file(
            schema,
            schema.AssociatedFileType.TENSOR_AXIS_LABELS,
            "one label per line, in the order of the output scores",
        )
    ]
    return _tensor(
        schema,
        "probability",
        f"scores of the {len(contract.labels)} labels",
        schema.ContentProperties.FeatureProperties,
        schema.FeaturePropertiesT(),
        files,
    )


def _per_box(schema: Any, tensor: Any) -> Any:
    """Mark a detector's output as one value (or box) per detection along dimension 2, as MediaPipe's writer does."""
    value_range = schema.ValueRangeT()
    value_range.min = value_range.max = 2
    tensor.content.range = value_range
    return tensor


def _boxes_metadata(
    schema: Any, contract: ModelContract, index: tuple[int, ...] = (0, 1, 2, 3), order: str = "left, top, right, bottom"
) -> Any:
    """A detector's boxes as fractions of the input; `index` gives where left, top, right and bottom sit."""
    box = schema.BoundingBoxPropertiesT()
    box.index = list(index)
    box.type = schema.BoundingBoxType.BOUNDARIES
    box.coordinateType = schema.CoordinateType.RATIO
    return _per_box(
        schema,
        _tensor(
            schema,
            "location",
            f"boxes ({order}) as fractions of the input size",
            schema.ContentProperties.BoundingBoxProperties,
            box,
        ),
    )


def _boxes_yxyx_metadata(schema: Any, contract: ModelContract) -> Any:
    """TFLite_Detection_PostProcess's boxes: top, left, bottom, right."""
    return _boxes_metadata(schema, contract, (1, 0, 3, 2), "top, left, bottom, right")


def _classes_metadata(schema: Any, contract: ModelContract) -> Any:
    files = [
        _labels_file(schema, schema.AssociatedFileType.TENSOR_VALUE_LABELS, "one label per line: line i names class i")
    ]
    return _per_box(
        schema,
        _tensor(
            schema,
            "category",
            "class index of each box",
            schema.ContentProperties.FeatureProperties,
            schema.FeaturePropertiesT(),
            files,
        ),
    )


def _detection_scores_metadata(schema: Any, contract: ModelContract) -> Any:
    """Each box's score, with the contract's default threshold as ScoreThresholdingOptions for readers that use it
    (MediaPipe 0.10.14's ObjectDetector did not: the postprocess layout applies it in the graph)."""
    tensor = _tensor(
        schema, "score", "score of each box", schema.ContentProperties.FeatureProperties, schema.FeaturePropertiesT()
    )
    threshold = contract.head.get("score_threshold")
    if threshold is not None:
        options = schema.ScoreThresholdingOptionsT()
        options.globalScoreThreshold = float(threshold)
        unit = schema.ProcessUnitT()
        unit.optionsType = schema.ProcessUnitOptions.ScoreThresholdingOptions
        unit.options = options
        tensor.processUnits = [unit]
    return _per_box(schema, tensor)


def _segmentation_metadata(schema: Any, contract: ModelContract) -> Any:
    """A segmentation model's per-class scores: MediaPipe's ImageSegmenter reads the output as an image (grayscale,
    its dimensions 1 and 2 the height and width) whose channels are named by labels.txt."""
    properties = schema.ImagePropertiesT()
    properties.colorSpace = schema.ColorSpaceType.GRAYSCALE
    files = [_labels_file(schema, schema.AssociatedFileType.TENSOR_AXIS_LABELS, "one label per line, in channel order")]
    tensor = _tensor(
        schema,
        "segmentation_masks",
        f"each pixel's scores of the {len(contract.labels)} labels",
        schema.ContentProperties.ImageProperties,
        properties,
        files,
    )
    value_range = schema.ValueRangeT()
    value_range.min, value_range.max = 1, 2
    tensor.content.range = value_range
    return tensor


def _count_metadata(schema: Any, contract: ModelContract) -> Any:
    tensor = schema.TensorMetadataT()
    tensor.name, tensor.description = (
        "number of detections",
        "how many of the boxes are detections (the rest is padding)",
    )
    return tensor


def _described(name: str, description: str) -> Any:
    """Metadata for an output that standard readers do not decode: its name and what it holds."""

    def make(schema: Any, contract: ModelContract) -> Any:
        tensor = schema.TensorMetadataT()
        tensor.name, tensor.description = name, description
        return tensor

    return make


_OUTPUT_METADATA = {
    "heatmap": _described("heatmap", "per stride-4 cell, each class's centre score (sigmoid)"),
    "box_sides": _described("box sides", "per stride-4 cell, the box's left, top, right and bottom in input pixels"),
    "keypoint_offsets": _described(
        "keypoint offsets", "per stride-4 cell, each point's x and y from the cell's centre, in cells"
    ),
    "keypoint_visibility": _described("keypoint visibility", "per stride-4 cell, each point's visibility (sigmoid)"),
    "raw_boxes_and_keypoints": _described("raw boxes and keypoints", "per anchor, the box and points to decode"),
    "raw_scores": _described("raw scores", "per anchor, each class's raw score"),
    "scores": _scores_metadata,
    "segmentation_scores": _segmentation_metadata,
    "category_mask": _described("category mask", "each pixel's class index, computed in the graph"),
    "boxes": _boxes_metadata,
    "boxes_yxyx": _boxes_yxyx_metadata,
    "classes": _classes_metadata,
    "detection_scores": _detection_scores_metadata,
    "count": _count_metadata,
}
DETECTION_GROUP = "detection_result"  # MediaPipe's name for the boxes, classes and scores tensor group


def build_metadata(
    contract: ModelContract,
    author: str = "edgekit",
    description: str | None = None,
    outputs: tuple[str, ...] | None = None,
) -> bytes:
    """The TFLITE_METADATA flatbuffer: one image input; a classifier's score output, or, with
    `outputs` naming each output's role in the file's order, a detector's boxes, classes and scores."""
    import flatbuffers

    schema = _schema()
    spec = contract.preprocessing
    image = schema.ImagePropertiesT()
    image.colorSpace = (
        schema.ColorSpaceType.GRAYSCALE if spec.color_order is ColorOrder.GRAY else schema.ColorSpaceType.RGB
    )
    content = schema.ContentT()
    content.contentPropertiesType = schema.ContentProperties.ImageProperties
    content.contentProperties = image
    options = schema.NormalizationOptionsT()
    options.mean, options.std = normalization(spec)
    unit = schema.ProcessUnitT()
    unit.optionsType = schema.ProcessUnitOptions.NormalizationOptions
    unit.options = options
    image_tensor = schema.TensorMetadataT()
    image_tensor.name = "image"
    image_tensor.description = f"{spec.height}x{spec.width} {spec.color_order.value} image"
    image_tensor.content = content
    image_tensor.processUnits = [unit]
    stats = schema.StatsT()
    stats.min, stats.max = [0.0], [255.0]
    image_tensor.stats = stats

    subgraph = schema.SubGraphMetadataT()
    subgraph.inputTensorMetadata = [image_tensor]
    subgraph.outputTensorMetadata = [_OUTPUT_METADATA[role](schema, contract) for role in (outputs or ("scores",))]
    if (
        outputs and "count" in outputs
    ):  # TFLite_Detection_PostProcess's layout: its box, class and score tensors, grouped
        group = schema.TensorGroupT()
        group.name = DETECTION_GROUP
        group.tensorNames = [
            tensor.name for tensor in subgraph.outputTensorMetadata if tensor.name != "number of detections"
        ]
        subgraph.outputTensorGroups = [group]
    model = schema.ModelMetadataT()
    model.name = contract.model_name
    model.description = description or f"{contract.task} over {len(contract.labels)} labels"
    model.version = contract.edgekit_version or "1"
    model.author = author
    model.subgraphMetadata = [subgraph]
    model.minParserVersion = MIN_PARSER_VERSION
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=METADATA_IDENTIFIER)
    return bytes(builder.Output())


def associated_files(model: bytes) -> dict[str, bytes]:
    """The files zipped after the flatbuffer (empty when there are none)."""
    if b"PK\x05\x06" not in model[-65_600:]:  # no end-of-central-directory record: no archive
        return {}
    try:
        with zipfile.ZipFile(io.BytesIO(model)) as archive:
            return {info.filename: archive.read(info) for info in archive.infolist() if not info.is_dir()}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ValueError(f"the associated files zipped after the model are damaged ({exc})") from None


def with_associated_files(flatbuffer: bytes, files: dict[str, bytes]) -> bytes:
    """`flatbuffer` with `files` zipped after it, as the metadata schema prescribes."""
    if not files:
        return flatbuffer
    stream = io.BytesIO()
    stream.write(flatbuffer)
    with zipfile.ZipFile(stream, "a", compression=zipfile.ZIP_STORED) as archive:  # appended after the model
        for name, data in files.items():
            archive.writestr(name, data)
    return stream.getvalue()


@dataclass(frozen=True)
class StandardMetadata:
    """What a TFLITE_METADATA buffer says about a model's first input and output."""

    name: str | None
    color_space: str | None  # "RGB", "GRAYSCALE" or None
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    label_file: str | None
    labels: tuple[str, ...] | None
    sources: dict[str, str] = field(default_factory=dict)


def parse_metadata(buffer: bytes, files: dict[str, bytes]) -> StandardMetadata:
    """Read the first subgraph's input normalization and colour space and the output labels."""
    schema = _schema()
    if len(buffer) < 8 or buffer[4:8] != METADATA_IDENTIFIER:
        raise ContractError("the TFLITE_METADATA buffer is not standard metadata (no M001 identifier)")
    try:
        model = schema.ModelMetadataT.InitFromObj(schema.ModelMetadata.GetRootAs(bytearray(buffer), 0))
    except Exception as exc:  # flatbuffers raises IndexError/struct.error on damaged buffers
        raise ContractError(f"the standard TFLite metadata is damaged ({type(exc).__name__})") from None
    mean = std = color = label_file = labels = None
    sources: dict[str, str] = {}
    subgraphs = model.subgraphMetadata or []
    if subgraphs and subgraphs[0].inputTensorMetadata:
        tensor = subgraphs[0].inputTensorMetadata[0]
        for unit in tensor.processUnits or []:
            if unit.optionsType == schema.ProcessUnitOptions.NormalizationOptions and unit.options is not None:
                mean, std = tuple(float(v) for v in unit.options.mean), tuple(float(v) for v in unit.options.std)
                sources["normalization"] = "standard metadata NormalizationOptions"
        properties = tensor.content.contentProperties if tensor.content is not None else None
        if (
            tensor.content is not None
            and tensor.content.contentPropertiesType == schema.ContentProperties.ImageProperties
        ):
            color = {schema.ColorSpaceType.RGB: "RGB", schema.ColorSpaceType.GRAYSCALE: "GRAYSCALE"}.get(
                properties.colorSpace
            )
            if color:
                sources["color_order"] = "standard metadata ImageProperties"
    if subgraphs and subgraphs[0].outputTensorMetadata:
        for associated in subgraphs[0].outputTensorMetadata[0].associatedFiles or []:
            if associated.type == schema.AssociatedFileType.TENSOR_AXIS_LABELS:
                name = associated.name.decode() if isinstance(associated.name, bytes) else associated.name
                if name not in files:
                    raise ContractError(
                        f"the standard metadata names the label file {name!r}, but the model carries no such "
                        "associated file: it was stripped; write the metadata again"
                    )
                label_file = name
                labels = tuple(
                    line.strip() for line in files[name].decode("utf-8", "replace").splitlines() if line.strip()
                )
                sources["labels"] = f"{name} (TENSOR_AXIS_LABELS associated file)"
                break
    name = model.name.decode() if isinstance(model.name, bytes) else model.name
    return StandardMetadata(name, color, mean, std, label_file, labels, sources)


def derive_contract(
    metadata: StandardMetadata, input_shape: tuple[int, ...], classes: int
) -> tuple[ModelContract, dict[str, str]]:
    """An edgekit contract from standard metadata and the input tensor: (contract, where each field came from)."""
    if len(input_shape) != 4:
        raise ContractError(f"standard metadata describes an image input, but the input tensor has shape {input_shape}")
    height, width, channels = input_shape[1:]
    sources = dict(metadata.sources)
    sources["input_size"] = "input tensor shape"
    color = ColorOrder.GRAY if (metadata.color_space == "GRAYSCALE" or channels == 1) else ColorOrder.RGB
    sources.setdefault("color_order", "input tensor channels (RGB assumed)")
    mean, std = metadata.mean or (0.0,), metadata.std or (1.0,)
    count = 1 if color is ColorOrder.GRAY else 3
    mean = mean * count if len(mean) == 1 else mean
    std = std * count if len(std) == 1 else std
    if len(mean) != count or len(std) != count:
        raise ContractError(
            f"standard metadata normalization has {len(mean)} means and {len(std)} stds for {count} channel(s)"
        )
    if any(s == 0 for s in std):
        raise ContractError("standard metadata normalization has a zero std")
    sources.setdefault("normalization", "none given: raw 0..255 pixels")
    # (p - mean) / std as the contract's scale/offset when the channels agree, else mean/std on raw pixels
    if len(set(mean)) == 1 and len(set(std)) == 1:
        preprocessing = Preprocessing((height, width), color, scale=1.0 / std[0], offset=-mean[0] / std[0])
    else:
        preprocessing = Preprocessing((height, width), color, scale=1.0, offset=0.0, mean=mean, std=std)
    labels = metadata.labels
    if labels is None or len(labels) != classes:
        if labels is not None:
            sources["labels"] = (
                f"{metadata.label_file} has {len(labels)} labels for {classes} scores: ignored, indices used"
            )
        else:
            sources["labels"] = "none given: output indices"
        labels = tuple(str(i) for i in range(classes))
    return ModelContract(preprocessing, labels, model_name=metadata.name or "model"), sources
