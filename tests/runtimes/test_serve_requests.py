"""The serving request parser without a server (runtimes/serving/rest.py, image_headers.py): image sizes read from
headers as their decoders read them, every budget checked before decoding, every malformed request a RequestError
with its status and a message naming the problem, and TF Serving's response shapes.

Fast and TensorFlow-free: bench/mutation.py runs this module against mutants of rest.py and image_headers.py.
The same cases over HTTP: test_serve.py and test_serve_security.py.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from helpers.encoded import RNG
from helpers.encoded import b64 as _b64
from helpers.encoded import encoded as _encoded

from runtimes.errors import RequestError
from runtimes.serving.image_headers import MAX_SEGMENTS, ImageHeader, read_header
from runtimes.serving.limits import Limits
from runtimes.serving.rest import (
    EncodedImage,
    PixelImage,
    model_metadata,
    model_status,
    parse_predict,
    predict_response,
    read_predict,
)


def _refused(body: bytes | str, limits: Limits | None = None) -> RequestError:
    with pytest.raises(RequestError) as refused:
        read_predict(body.encode() if isinstance(body, str) else body, limits or Limits())
    return refused.value


# -- image headers ----------------------------------------------------------------------------------------------------

FORMATS = {
    "jpeg": (".jpg",),
    "jpeg-progressive": (".jpg", cv2.IMWRITE_JPEG_PROGRESSIVE, 1),
    "png": (".png",),
    "webp-lossy": (".webp", cv2.IMWRITE_WEBP_QUALITY, 80),
    "webp-lossless": (".webp", cv2.IMWRITE_WEBP_QUALITY, 101),
}


@pytest.mark.parametrize("kind", FORMATS)
@pytest.mark.parametrize("height, width", [(1, 1), (37, 53), (480, 640), (1080, 1920), (3000, 17)])
def test_headers_give_the_size_the_decoder_gives(kind, height, width):
    data = _encoded(FORMATS[kind][0], height, width, *FORMATS[kind][1:])
    header = read_header(data)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert (header.width, header.height) == (decoded.shape[1], decoded.shape[0]) == (width, height)


def test_jpeg_headers_follow_libjpegs_marker_rules():
    """Stray bytes, 0xFF fill and FF00 before a marker are skipped as libjpeg skips them, and the size is still
    found."""
    data = _encoded(".jpg", 24, 40)
    app0_end = 4 + int.from_bytes(data[4:6], "big")
    for junk in (b"\x00", b"\x12\x34\x56", b"\xff\xff\xff", b"\xff\x00\xff\x00"):
        patched = data[:app0_end] + junk + data[app0_end:]
        assert cv2.imdecode(np.frombuffer(patched, np.uint8), cv2.IMREAD_COLOR).shape[:2] == (24, 40), junk
        assert (read_header(patched).width, read_header(patched).height) == (40, 24), junk
    sof = data.index(b"\xff\xc0")
    second = data[sof : sof + 2 + int.from_bytes(data[sof + 2 : sof + 4], "big")]
    bigger = bytearray(second)
    bigger[5:9] = (900).to_bytes(2, "big") * 2
    doubled = data[:sof] + bytes(bigger) + data[sof:]  # two frame headers: the larger counts
    assert read_header(doubled).pixels == 900 * 900
    for broken, message in (
        (data[:sof], "without a frame header"),
        (data[:2] + b"\xff\xd8" + data[2:], "second start"),
    ):
        with pytest.raises(RequestError, match=message) as refused:
            read_header(broken)
        assert refused.value.status == 400


OTHER_FORMATS = [".bmp", ".tiff", ".ppm", ".ras", ".hdr", ".pfm"]


@pytest.mark.parametrize("extension", OTHER_FORMATS)
def test_formats_whose_size_is_not_read_first_are_415_naming_the_accepted_ones(extension):
    data = _encoded(extension, 16, 16)
    with pytest.raises(RequestError, match="not a JPEG, PNG or WebP image") as refused:
        read_header(data)
    assert refused.value.status == 415


def test_the_request_budgets_hold_before_decoding():
    limits = Limits(max_image_pixels=100, max_request_pixels=150, max_pixels_in_flight=150, max_json_values=1000)
    ten = _b64(_encoded(".png", 10, 10))
    assert read_predict(json.dumps({"instances": [{"b64": ten}]}).encode(), limits).pixels == 100
    with pytest.raises(RequestError, match="over 200 pixels, over the 150 pixel limit of one request"):
        read_predict(json.dumps({"instances": [{"b64": ten}] * 2}).encode(), limits)
    with pytest.raises(RequestError, match="11x10 .110 pixels. is over the 100 pixel limit"):
        read_predict(json.dumps({"instances": [{"b64": _b64(_encoded(".webp", 10, 11))}]}).encode(), limits)
    with pytest.raises(ValueError, match="max_image_pixels <= max_request_pixels"):
        Limits(max_image_pixels=10, max_request_pixels=5)
    with pytest.raises(ValueError, match="max_connections must be a positive number"):
        Limits(max_connections=0)


def test_webp_extended_and_lossless_headers_and_the_largest_counts():
    lossless = _encoded(".webp", 30, 50, cv2.IMWRITE_WEBP_QUALITY, 101)
    assert lossless[12:16] == b"VP8L" and read_header(lossless) == ImageHeader("WebP", 50, 30)
    vp8x = b"VP8X" + (10).to_bytes(4, "little") + bytes(4) + (699).to_bytes(3, "little") + (399).to_bytes(3, "little")
    extended = b"RIFF" + bytes(4) + b"WEBP" + vp8x + lossless[12:]  # a canvas of 700 x 400 before the 50 x 30 frame
    assert read_header(extended) == ImageHeader("WebP", 700, 400)
    odd = (
        b"RIFF" + bytes(4) + b"WEBP" + b"ICCP" + (3).to_bytes(4, "little") + b"abc\x00" + lossless[12:]
    )  # padded chunk
    assert read_header(odd) == ImageHeader("WebP", 50, 30)
    assert read_header(odd).pixels == 1500
    with pytest.raises(RequestError, match="WebP without an image header") as refused:
        read_header(b"RIFF" + bytes(4) + b"WEBP" + b"ICCP" + (2).to_bytes(4, "little") + b"ab")
    assert refused.value.status == 400
    with pytest.raises(RequestError, match="VP8L header is cut short or malformed"):
        read_header(b"RIFF" + bytes(4) + b"WEBP" + b"VP8L" + (5).to_bytes(4, "little") + b"\x00abcd")
    with pytest.raises(RequestError, match="VP8X header is cut short"):
        read_header(b"RIFF" + bytes(4) + b"WEBP" + b"VP8X" + (4).to_bytes(4, "little") + bytes(4))


def test_png_and_empty_images():
    png = _encoded(".png", 7, 9)
    assert read_header(png, "image 3") == ImageHeader("PNG", 9, 7)
    empty = png[:16] + (0).to_bytes(4, "big") + png[20:]
    with pytest.raises(RequestError, match=r"^image 2: its PNG header declares an empty image \(0x7\)$") as refused:
        read_header(empty, "image 2")
    assert refused.value.status == 400
    with pytest.raises(RequestError, match="image 5: a PNG whose first chunk is not IHDR"):
        read_header(png[:23], "image 5")


def test_jpeg_edge_cases():
    data = _encoded(".jpg", 24, 40)
    sof = data.index(b"\xff\xc0")
    assert read_header(data[: sof + 9]) == ImageHeader("JPEG", 40, 24)  # the frame header is all that is read
    with pytest.raises(RequestError, match="without a frame header"):
        read_header(data[: sof + 8])  # cut inside it
    with pytest.raises(RequestError, match="without a frame header"):
        read_header(data[: sof + 3])  # cut inside its length
    with pytest.raises(RequestError, match="without a frame header"):
        read_header(b"\xff\xd8\xff\xd9" + data[sof:])  # EOI first: libjpeg stops there
    restart = data[:sof] + b"\xff\xd0\xff\x01" + data[sof:]  # RSTn and TEM carry no length
    assert read_header(restart) == ImageHeader("JPEG", 40, 24)
    with pytest.raises(RequestError, match="a JPEG marker segment of length 0"):
        read_header(b"\xff\xd8\xff\xe0\x00\x00")
    assert read_header(data[:sof] + b"\xff\xe1\x00\x02" + data[sof:]).width == 40  # an empty APP1 segment (length 2)
    many = b"\xff\xd8" + b"\xff\xe1\x00\x02" * (MAX_SEGMENTS + 1) + data[sof:]
    with pytest.raises(RequestError, match=f"a JPEG with over {MAX_SEGMENTS} markers"):
        read_header(many)
    fits = b"\xff\xd8" + b"\xff\xe1\x00\x02" * (MAX_SEGMENTS - 10) + data[sof:]  # with SOF, DHTs and SOS: under the cap
    assert read_header(fits).height == 24


# -- malformed requests: each a RequestError with its status, naming the problem --------------------------------------

MALFORMED = [
    (b"[" * 100_000 + b"]" * 100_000, 400, "malformed JSON: nested too deep"),
    (json.dumps({"instances": [[[[10**400, 0, 0]]]]}).encode(), 400, "image 0: pixel values must be numbers in 0..255"),
    (b'{"instances": [[[[' + b"9" * 5000 + b", 0, 0]]]]}", 400, "malformed JSON"),
    (b'{"instances": [[[[1e400, 0, 0]]]]}', 400, "numbers in 0..255"),
    (b'{"instances": [[[[-0.5, 0, 0]]]]}', 400, "numbers in 0..255"),
    (b'{"instances": [[[[255.5, 0, 0]]]]}', 400, "numbers in 0..255"),
    (b'{"instances": [[[["x", 0, 0]]]]}', 400, "image 0: nested lists of unequal lengths or non-numbers"),
    (b"\xff\xfe{}", 400, "malformed JSON"),
    (b"{not json", 400, "malformed JSON"),
    (b"[1, 2]", 400, 'the request must be a JSON object with "instances" or "inputs"'),
    (b'{"instances": [], "inputs": []}', 400, 'give exactly one of "instances" (row format) or "inputs"'),
    (b'{"predict": []}', 400, "give exactly one of"),
    (
        b'{"signature_name": "other", "instances": [[[[0, 0, 0]]]]}',
        400,
        "unknown signature_name 'other'; this model serves 'serving_default'",
    ),
    (json.dumps({"signature_name": "s" * 100, "instances": []}).encode(), 400, "unknown signature_name 'sssss"),
    (b'{"instances": []}', 400, '"instances" must be a non-empty list of images'),
    (b'{"inputs": 5}', 400, '"inputs" must be a non-empty list'),
    (b'{"instances": [{"b64": "not base64!"}]}', 400, "image 0: bad base64"),
    (b'{"instances": [{"b64": "aGVsbG8gd29ybGQ="}]}', 415, "image 0: not a JPEG, PNG or WebP image"),
    (b'{"instances": [{"b64": ""}]}', 400, "image 0: empty image data"),
    (b'{"instances": [{"b64": 5}]}', 400, 'image 0: a binary value is {"b64": "<base64 string>"}'),
    (b'{"instances": [{"b64": "QUJD", "x": 1}]}', 400, "a binary value is"),
    (b'{"instances": [[[1, 2, 3]]]}', 400, '"instances" holds one image as H x W x 3 lists: wrap it in a list'),
    (b'{"instances": [[[[1, 2]]]]}', 400, "image 0: shape [1, 1, 2]; an image is H x W x 3 (RGB) or H x W x 1"),
    (b'{"instances": [[[]]]}', 400, "image 0: shape [1]; an image is"),
    (b'{"instances": [[[[]]]]}', 400, "image 0: shape [1, 1]; an image is"),
    (b'{"instances": [[[[1, 2, 3, 4]]]]}', 400, "image 0: shape [1, 1, 4]; an image is"),
    (b'{"instances": [[[[1, 2, 3]], [[1, 2]]]]}', 400, "unequal lengths"),
    (b'{"instances": [[[[1, 2, 3]], [[1, 2, 3], [4, 5, 6]]]]}', 400, "unequal lengths"),
    (
        b'{"instances": [{"pixels": [[[1, 2, 3]]]}]}',
        400,
        "unknown input(s) ['pixels']; this model takes one input, 'images'",
    ),
    (b'{"inputs": {"pixels": [[[[1, 2, 3]]]]}}', 400, "unknown input(s) ['pixels']"),
    (b'{"instances": ["a string"]}', 400, 'image 0: expected {"b64": ...} or nested lists of pixels, got str'),
    (b'{"instances": [[[[0, 0, 0]]], 7]}', 400, "image 1: expected"),
    (json.dumps({"instances": [{"b64": _b64(b"BM" + bytes(60))}]}).encode(), 415, "not a JPEG, PNG or WebP"),
    (
        json.dumps({"instances": [{"b64": _b64(b"\xff\xd8\xff\xe0\x00\x01")}]}).encode(),
        400,
        "marker segment of length 1",
    ),
    (
        json.dumps({"instances": [{"b64": _b64(b"\x89PNG\r\n\x1a\n" + bytes(30))}]}).encode(),
        400,
        "first chunk is not IHDR",
    ),
    (json.dumps({"instances": [{"b64": "QUJD"}]}).encode(), 415, "not a JPEG"),
    (json.dumps({"instances": [[[[0, 0, 0]] * 300] * 300]}).encode(), 413, "JSON values, over the 262144 limit"),
]


@pytest.mark.parametrize("body, status, message", MALFORMED, ids=[m[:40] for _, _, m in MALFORMED])
def test_every_malformed_request_is_a_request_error_naming_the_problem(body, status, message):
    refused = _refused(body)
    assert refused.status == status and message in refused.message, refused.message


@pytest.mark.parametrize("extension, kind", [(".jpg", "JPEG"), (".png", "PNG")])
def test_a_damaged_image_is_a_400_when_decoded_naming_its_format(extension, kind):
    cut = _encoded(extension, 20, 20)[: 60 if kind == "PNG" else 200]
    pending = read_predict(json.dumps({"instances": [{"b64": _b64(cut)}]}).encode(), Limits())  # the header is whole
    with pytest.raises(RequestError, match=f"image 0: a damaged {kind} image") as refused:
        pending.decoded()
    assert refused.value.status == 400


def test_request_size_limits_give_413_before_parsing():
    body = json.dumps({"instances": [[[[0, 0, 0]]]]}).encode()
    assert (
        _refused(body, Limits(max_body_bytes=len(body) - 1)).message
        == f"request body of {len(body)} bytes is over the {len(body) - 1} byte limit"
    )
    read_predict(body, Limits(max_body_bytes=len(body)))  # exactly at the limit: read
    values = body.count(b",") + body.count(b"[") + body.count(b"{")
    refused = _refused(body, Limits(max_json_values=values - 1))
    assert refused.status == 413 and f"holds up to {values} JSON values, over the {values - 1} limit" in refused.message
    read_predict(body, Limits(max_json_values=values))
    two = json.dumps({"instances": [[[[0, 0, 0]]]] * 3}).encode()
    refused = _refused(two, Limits(max_images=2))
    assert refused.status == 413 and refused.message == "3 images in one request; at most 2"
    assert len(read_predict(two, Limits(max_images=3)).images) == 3


def test_pixel_lists_are_checked_against_the_image_limit_before_conversion():
    image = np.zeros((6, 5, 3), np.uint8).tolist()
    refused = _refused(json.dumps({"instances": [image]}), Limits(max_image_pixels=29, max_request_pixels=100))
    assert refused.status == 413 and refused.message == "image 0: 5x6 is over the 29 pixel limit"
    assert read_predict(json.dumps({"instances": [image]}).encode(), Limits(max_image_pixels=30)).pixels == 30
    refused = _refused(
        json.dumps({"instances": [image, image]}),
        Limits(max_image_pixels=30, max_request_pixels=59, max_pixels_in_flight=59),
    )
    assert refused.status == 413 and "over 60 pixels, over the 59 pixel limit of one request" in refused.message


def test_row_and_columnar_forms_and_names_give_the_same_images():
    pixels = RNG.integers(0, 256, (3, 4, 3)).tolist()
    png = _encoded(".png", 5, 6)
    decoded = cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    forms = {
        "row": ({"instances": [pixels, {"b64": _b64(png)}]}, True),
        "row, named": ({"instances": [{"images": pixels}, {"images": {"b64": _b64(png)}}]}, True),
        "columnar": ({"inputs": [pixels, {"b64": _b64(png)}]}, False),
        "columnar, named": ({"inputs": {"images": [pixels, {"b64": _b64(png)}]}}, False),
        "signature given": ({"signature_name": "serving_default", "instances": [pixels, {"b64": _b64(png)}]}, True),
    }
    for name, (request, row) in forms.items():
        parsed = parse_predict(json.dumps(request).encode(), Limits())
        assert parsed.row_format is row, name
        assert len(parsed.images) == 2
        np.testing.assert_array_equal(parsed.images[0], np.array(pixels, np.uint8))
        np.testing.assert_array_equal(parsed.images[1], decoded)
    one = parse_predict(json.dumps({"inputs": {"b64": _b64(png)}}).encode(), Limits())  # a single image, columnar
    assert len(one.images) == 1 and not one.row_format


def test_pixel_values_are_rounded_and_gray_images_become_rgb():
    parsed = parse_predict(b'{"instances": [[[[0.4], [0.5]], [[1.5], [254.6]]]]}', Limits())
    image = parsed.images[0]
    assert image.shape == (2, 2, 3) and image.dtype == np.uint8
    assert image[..., 0].tolist() == [[0, 0], [2, 255]] and (image[..., 1] == image[..., 0]).all()
    exact = parse_predict(b'{"instances": [[[[0, 128, 255]]]]}', Limits())
    assert exact.row_format and exact.images[0].tolist() == [[[0, 128, 255]]]


def test_pending_requests_count_pixels_and_hand_images_to_the_model_in_their_own_order():
    png, jpg = _encoded(".png", 5, 6), _encoded(".jpg", 8, 8)
    pending = read_predict(json.dumps({"instances": [{"b64": _b64(png)}, {"b64": _b64(jpg)}]}).encode(), Limits())
    assert pending.pixels == 30 + 64 and all(isinstance(i, EncodedImage) for i in pending.images)
    images, color = pending.for_model()
    assert color == "bgr"
    np.testing.assert_array_equal(images[0], cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR))
    mixed = read_predict(json.dumps({"instances": [{"b64": _b64(png)}, [[[1, 2, 3]]]]}).encode(), Limits())
    assert isinstance(mixed.images[1], PixelImage) and mixed.pixels == 31
    images, color = mixed.for_model()
    assert color == "rgb" and images[1].tolist() == [[[1, 2, 3]]]
    np.testing.assert_array_equal(
        images[0], cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    )


def test_an_image_that_decodes_larger_than_its_header_is_refused():
    png = _encoded(".png", 10, 10)
    lying = EncodedImage(png, ImageHeader("PNG", 5, 5), "image 0")
    with pytest.raises(RequestError, match=r"image 0: decoded to 10x10, not the 5x5 its header declares") as refused:
        lying.decode_bgr()
    assert refused.value.status == 400


def test_long_base64_is_decoded_in_slices_and_checked_strictly():
    from runtimes.serving import rest

    data = RNG.integers(0, 256, rest.BASE64_SLICE, dtype=np.uint8).tobytes()  # 4/3 of a slice of characters
    text = _b64(data)
    assert len(text) > rest.BASE64_SLICE and rest._base64(text, "image 0") == data
    with pytest.raises(RequestError, match=r"image 0: bad base64 \(\d+ characters is not a multiple of 4\)"):
        rest._base64(text[:-1], "image 0")
    with pytest.raises(RequestError, match="image 0: bad base64"):
        rest._base64(text[: rest.BASE64_SLICE] + "!" + text[rest.BASE64_SLICE + 1 :], "image 0")


def test_responses_in_tf_servings_shapes():
    predictions = [{"scores": [0.1, 0.9], "label": "b"}, {"scores": [0.7, 0.3], "label": "a"}]
    assert predict_response(predictions, row_format=True) == {"predictions": predictions}
    assert predict_response(predictions, row_format=False) == {
        "outputs": {"scores": [[0.1, 0.9], [0.7, 0.3]], "label": ["b", "a"]}
    }
    assert model_status(3) == {
        "model_version_status": [
            {"version": "3", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }
    metadata = model_metadata(
        "tiny", 2, {"scores": ("DT_FLOAT", [-1, 3]), "label": ("DT_STRING", [-1])}, {"labels": ["a"]}
    )
    assert metadata["model_spec"] == {"name": "tiny", "signature_name": "", "version": "2"}
    signature = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["inputs"]["images"] == {
        "name": "serving_default_images:0",
        "dtype": "DT_UINT8",
        "tensor_shape": {"dim": [{"size": "-1", "name": ""}] * 3 + [{"size": "3", "name": ""}]},
    }
    assert signature["outputs"]["label"]["name"] == "StatefulPartitionedCall:1"
    assert signature["outputs"]["scores"]["tensor_shape"]["dim"][1] == {"size": "3", "name": ""}
    assert signature["method_name"] == "tensorflow/serving/predict" and metadata["edgekit_contract"] == {
        "labels": ["a"]
    }


# -- edges the mutation bench found unpinned
# -----------------------------------------------------------------------------


def test_characters_outside_base64_are_refused_not_skipped():
    """Non-alphabet characters in groups of four would decode to other bytes if skipped: strict everywhere."""
    from runtimes.serving import rest

    refused = _refused(json.dumps({"instances": [{"b64": "QUJD!!!!"}]}))
    assert refused.status == 400 and refused.message.startswith("image 0: bad base64")
    data = RNG.integers(0, 256, rest.BASE64_SLICE, dtype=np.uint8).tobytes()
    text = _b64(data)
    with pytest.raises(RequestError, match="image 0: bad base64"):
        rest._base64(text[:8] + "!!!!" + text[12:], "image 0")  # in the first slice of a long text
    exactly = RNG.integers(0, 256, rest.BASE64_SLICE // 4 * 3, dtype=np.uint8).tobytes()  # one slice, to the character
    assert len(_b64(exactly)) == rest.BASE64_SLICE and rest._base64(_b64(exactly), "image 0") == exactly


def test_pixel_lists_that_are_not_lists_of_lists_are_400_not_500():
    for body, message in (
        (b'{"instances": [[]]}', "image 0: shape [0]; an image is"),
        (b'{"instances": [[5]]}', "image 0: shape [1]; an image is"),
    ):
        refused = _refused(body)
        assert refused.status == 400 and message in refused.message, (body, refused.message)


def test_long_values_are_shown_cut_to_60_characters():
    exactly = "s" * 58  # repr adds the quotes: 60 characters, shown whole
    assert (
        _refused(json.dumps({"signature_name": exactly, "instances": [[[[0, 0, 0]]]]})).message
        == f"unknown signature_name '{exactly}'; this model serves 'serving_default'"
    )
    longer = "s" * 59
    assert (
        _refused(json.dumps({"signature_name": longer, "instances": [[[[0, 0, 0]]]]})).message
        == f"unknown signature_name '{'s' * 56}...; this model serves 'serving_default'"
    )


def test_every_status_and_message_in_full():
    cases = [
        (b"[1]", 400, 'the request must be a JSON object with "instances" or "inputs"'),
        (
            b'{"inputs": [], "instances": []}',
            400,
            'give exactly one of "instances" (row format) or "inputs" (columnar format)',
        ),
        (b"[" * 100_000 + b"]" * 100_000, 400, "malformed JSON: nested too deep"),
    ]
    for body, status, message in cases:
        refused = _refused(body)
        assert (refused.status, refused.message) == (status, message)
    body = json.dumps({"instances": [[[[0, 0, 0]]]]}).encode()
    values = body.count(b",") + body.count(b"[") + body.count(b"{")
    refused = _refused(body, Limits(max_json_values=values - 1))
    assert refused.message == (
        f"the request holds up to {values} JSON values, over the {values - 1} limit: send large "
        'images encoded, as {"b64": "<base64 JPEG or PNG>"}'
    )
    refused = _refused(body, Limits(max_body_bytes=10))
    assert refused.status == 413
    big = _encoded(".png", 10, 10)
    refused = _refused(
        json.dumps({"instances": [{"b64": _b64(big)}]}), Limits(max_image_pixels=99, max_request_pixels=100)
    )
    assert (refused.status, refused.message) == (413, "image 0: 10x10 (100 pixels) is over the 99 pixel limit")
    at_limit = read_predict(
        json.dumps({"instances": [{"b64": _b64(big)}] * 2}).encode(),
        Limits(max_image_pixels=100, max_request_pixels=200, max_pixels_in_flight=200),
    )
    assert at_limit.pixels == 200  # exactly the request's limit: read


def test_opencv_decode_errors_become_413_for_its_pixel_cap_and_400_otherwise(monkeypatch):
    from runtimes.serving import rest

    pending = read_predict(json.dumps({"instances": [{"b64": _b64(_encoded(".png", 4, 4))}]}).encode(), Limits())
    image = pending.images[0]

    def capped(*_):
        raise cv2.error(
            "OpenCV(5.1.0) loadsave.cpp:77: error: (-215:Assertion failed)\n"
            "pixels <= CV_IO_MAX_IMAGE_PIXELS in function 'validateInputImageSize'\n"
        )

    monkeypatch.setattr(rest.cv2, "imdecode", capped)
    with pytest.raises(RequestError) as refused:
        image.decode_bgr()
    assert refused.value.status == 413
    assert refused.value.message == (
        "image 0: over OpenCV's pixel limit (pixels <= CV_IO_MAX_IMAGE_PIXELS in function 'validateInputImageSize')"
    )

    def broken(*_):
        raise cv2.error("   \n")

    monkeypatch.setattr(rest.cv2, "imdecode", broken)
    with pytest.raises(RequestError) as refused:
        image.decode_bgr()
    assert (refused.value.status, refused.value.message) == (400, "image 0: a damaged PNG image (error)")

    def wordy(*_):
        raise cv2.error("x" * 300)

    monkeypatch.setattr(rest.cv2, "imdecode", wordy)
    with pytest.raises(RequestError) as refused:
        image.decode_bgr()
    assert refused.value.message == f"image 0: a damaged PNG image ({'x' * 200})"


def test_one_prediction_columnar_and_the_default_status_version():
    assert predict_response([{"scores": [0.5], "label": "a"}], row_format=False) == {
        "outputs": {"scores": [[0.5]], "label": ["a"]}
    }
    assert model_status()["model_version_status"][0]["version"] == "1"
    metadata = model_metadata("m", 1, {"scores": ("DT_FLOAT", [-1, 2])}, None)
    assert (
        metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]["outputs"]["scores"]["dtype"]
        == "DT_FLOAT"
    )


# -- header edges ---------------------------------------------------------------------------------------------------


def _sof(width: int, height: int) -> bytes:
    return b"\xff\xc0\x00\x11\x08" + height.to_bytes(2, "big") + width.to_bytes(2, "big") + bytes(12)


def test_several_jpeg_frame_headers_the_largest_area_counts():
    data = _encoded(".jpg", 24, 40)
    sof = data.index(b"\xff\xc0")
    after = sof + 2 + int.from_bytes(data[sof + 2 : sof + 4], "big")
    for extra, expected in (
        (_sof(900, 900), (900, 900)),  # larger, after: replaces
        (_sof(24, 40), (40, 24)),  # the same area turned: the first stays
        (_sof(30, 30), (40, 24)),  # 900 < 960: the first stays
        (_sof(50, 300), (50, 300)),
    ):  # thin but larger (15000)
        patched = data[:after] + extra + data[after:]
        header = read_header(patched)
        assert (header.width, header.height) == expected, extra
    assert read_header(b"\xff\xd8" + _sof(640, 480) + b"\xff\xda").pixels == 640 * 480


def test_a_jpeg_that_ends_before_any_marker_is_a_400():
    for data in (b"\xff\xd8\xff\x00abc", b"\xff\xd8\xff", b"\xff\xd8\xffabc"):
        with pytest.raises(RequestError, match="a JPEG without a frame header") as refused:
            read_header(data, "image 1")
        assert refused.value.status == 400 and refused.value.message.startswith("image 1: ")
    with pytest.raises(RequestError) as refused:
        read_header(b"\xff\xd8" + b"\xff\xe1\x00\x02" * (MAX_SEGMENTS + 1))
    assert refused.value.status == 400 and refused.value.message.startswith("image: a JPEG with over 4096 markers")


def test_png_widths_past_16_bits_and_the_shortest_header():
    png = _encoded(".png", 7, 9)
    assert read_header(png[:24]) == ImageHeader("PNG", 9, 7)  # signature, IHDR length and type, width, height
    crafted = png[:16] + (0x01000010).to_bytes(4, "big") + (0x02000020).to_bytes(4, "big")
    assert read_header(crafted) == ImageHeader("PNG", 0x01000010, 0x02000020)  # four bytes each, big-endian
    with pytest.raises(RequestError, match="first chunk is not IHDR"):
        read_header(png[:23])


def test_webp_chunk_edges():
    def riff(*chunks: bytes) -> bytes:
        return b"RIFF" + bytes(4) + b"WEBP" + b"".join(chunks)

    vp8x = lambda w, h, extra=b"": (
        b"VP8X"
        + (10 + len(extra)).to_bytes(4, "little")
        + bytes(4)
        + (w - 1).to_bytes(3, "little")
        + (h - 1).to_bytes(3, "little")
        + extra
    )  # noqa: E731
    assert read_header(riff(vp8x(300, 200, b"\xff\xff"))) == ImageHeader("WebP", 300, 200)  # three bytes each, no more
    with pytest.raises(RequestError, match="VP8X header is cut short or malformed") as refused:
        read_header(riff(b"VP8X" + bytes(4)))  # a header of length 0 at the very end
    assert refused.value.status == 400
    vp8 = (
        b"VP8 "
        + (10).to_bytes(4, "little")
        + b"\x00\x00\x00\x9d\x01\x2a"
        + (0xC000 | 320).to_bytes(2, "little")
        + (0x4000 | 240).to_bytes(2, "little")
    )
    assert read_header(riff(vp8)) == ImageHeader("WebP", 320, 240)  # the scale bits above 14 are not size
    with pytest.raises(RequestError, match="VP8 header is cut short or malformed"):
        read_header(
            riff(b"VP8 " + (10).to_bytes(4, "little") + b"\x00\x00\x00\x9d\x01\x2b" + bytes(4))
        )  # bad start code
    with pytest.raises(RequestError, match="VP8 header is cut short"):
        read_header(riff(vp8[:17]))  # 9 bytes of its 10
    assert read_header(riff(vp8x(30, 20), vp8)) == ImageHeader("WebP", 320, 240)  # the larger of canvas and frame
    assert read_header(riff(vp8x(300, 300), vp8)) == ImageHeader("WebP", 300, 300)  # 90000 > 76800, though squarer
    assert read_header(riff(vp8x(400, 200), vp8)) == ImageHeader("WebP", 400, 200)  # 80000 > 76800, though lower
    assert read_header(riff(vp8, vp8x(4000, 4000))) == ImageHeader("WebP", 320, 240)  # after the image data: not read
    vp8l = (
        b"VP8L" + (5).to_bytes(4, "little") + b"\x2f" + ((99) | (49 << 14)).to_bytes(4, "little")
    )  # 100 x 50, 5 bytes
    assert read_header(riff(vp8l)) == ImageHeader("WebP", 100, 50)
    assert read_header(riff(vp8l + b"\x00", vp8x(4000, 4000))) == ImageHeader("WebP", 100, 50)  # padded to even
    with pytest.raises(RequestError) as refused:
        read_header(riff(b"VP8L" + (4).to_bytes(4, "little") + b"\x2f\x00\x00\x00"), "image 2")
    assert refused.value.message == "image 2: a WebP whose VP8L header is cut short or malformed"
    with pytest.raises(RequestError) as refused:
        read_header(b"RIFF" + bytes(4) + b"WAVE" + bytes(20), "image 3")  # a RIFF that is not a WebP
    assert refused.value.status == 415 and refused.value.message == (
        "image 3: not a JPEG, PNG or WebP image (the only formats this server decodes: each is checked against the "
        "pixel "
        "limits from its header first); convert it to JPEG or PNG"
    )
