"""The one preprocessing implementation, and the promise that training sees what inference sees."""

import cv2
import numpy as np
import pytest

import edgekit
from runtimes.contract import Preprocessing
from runtimes.errors import InputError
from runtimes.preprocess import (
    PixelPlan,
    normalize,
    prepare_pixels,
    preprocess,
    read_image,
    resize_image,
    to_color_order,
)


def _rgb_image(h=30, w=40):
    image = np.zeros((h, w, 3), np.uint8)
    image[..., 0] = 200  # red channel in RGB order
    image[..., 2] = 10
    return image


def test_colour_orders_from_rgb_and_bgr_inputs():
    rgb = _rgb_image()
    bgr = rgb[..., ::-1].copy()
    to_rgb = Preprocessing((30, 40), "rgb")
    to_bgr = Preprocessing((30, 40), "bgr")
    assert prepare_pixels(rgb, to_rgb, "rgb")[0, 0].tolist() == [200, 0, 10]
    assert prepare_pixels(bgr, to_rgb, "bgr")[0, 0].tolist() == [200, 0, 10]
    assert prepare_pixels(rgb, to_bgr, "rgb")[0, 0].tolist() == [10, 0, 200]
    gray = prepare_pixels(rgb, Preprocessing((30, 40), "gray"), "rgb")
    assert gray.shape == (30, 40, 1)
    assert gray[0, 0, 0] == cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[0, 0]


def test_grayscale_and_rgba_inputs_are_converted():
    spec = Preprocessing((8, 8), "rgb")
    gray = np.full((8, 8), 77, np.uint8)
    assert prepare_pixels(gray, spec)[0, 0].tolist() == [77, 77, 77]
    assert prepare_pixels(gray[..., None], spec)[0, 0].tolist() == [77, 77, 77]
    rgba = np.dstack([_rgb_image(8, 8), np.full((8, 8), 5, np.uint8)])
    assert prepare_pixels(rgba, spec).shape == (8, 8, 3)
    assert prepare_pixels(rgba, spec)[0, 0].tolist() == [200, 0, 10]


@pytest.mark.parametrize(
    "image, color, message",
    [
        (np.zeros((4, 4, 3), np.float32), "rgb", "expected uint8 pixels, got dtype float32"),
        (np.zeros((4, 4, 2), np.uint8), "rgb", "expected an image of shape"),
        (np.zeros((4, 4, 3), np.uint8), "gray", "color='gray' was given but the image has 3 channels"),
        (np.zeros((4, 4, 3), np.uint8), "yuv", "invalid color 'yuv'"),
        ([[1, 2]], "rgb", "expected a numpy image or a path, got list"),
    ],
)
def test_bad_images_are_named(image, color, message):
    with pytest.raises(InputError, match=message):
        prepare_pixels(image, Preprocessing(4), color)


def test_resize_modes_keep_the_right_content():
    wide = np.zeros((20, 40, 3), np.uint8)
    wide[:, 10:30] = 255  # bright centre block, dark left and right
    letterbox = resize_image(wide, Preprocessing(20, resize="letterbox", pad_value=7))
    assert letterbox.shape == (20, 20, 3)
    assert (letterbox[:5] == 7).all() and (letterbox[-5:] == 7).all()  # padded top and bottom
    crop = resize_image(wide, Preprocessing(20, resize="center_crop"))
    assert crop.shape == (20, 20, 3) and crop.min() == 255  # only the bright centre survives
    stretch = resize_image(wide, Preprocessing(20, resize="stretch"))
    assert stretch.shape == (20, 20, 3) and stretch[:, 0].max() == 0 and stretch[:, 10].min() == 255


def test_normalize_scaling_mean_std_and_layout():
    pixels = np.full((2, 2, 3), 255, np.uint8)
    assert normalize(pixels, Preprocessing(2, scale=1 / 127.5, offset=-1)).max() == pytest.approx(1.0)
    spec = Preprocessing(2, mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0), layout="nchw")
    out = normalize(pixels, spec)
    assert out.shape == (1, 3, 2, 2) and out.dtype == np.float32
    assert out[0, :, 0, 0].tolist() == pytest.approx([2.0, 1.0, 0.5])


def test_unreadable_files(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(InputError, match=f"cannot decode image {bad}"):
        read_image(bad)
    with pytest.raises(InputError, match="image file not found"):
        read_image(tmp_path / "missing.jpg")


SPECS = [
    Preprocessing(40, "rgb", "stretch", scale=1 / 255),
    Preprocessing((32, 48), "bgr", "letterbox", scale=1 / 127.5, offset=-1.0),
    Preprocessing(36, "gray", "center_crop", mean=(0.45,), std=(0.25,)),
    Preprocessing(28, "rgb", "stretch", mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), layout="nchw"),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.color_order.value}-{s.resize.value}-{s.layout.value}")
def test_training_pipeline_and_runtime_give_the_same_tensor(shapes_root, spec):
    """ImageFolder -> training batches must equal runtimes.preprocess on the same file."""
    from edgekit.training.classification import _batches

    dataset = edgekit.ImageFolder(
        shapes_root, image_size=spec.input_size, color_order=spec.color_order, resize=spec.resize
    )
    subset = dataset.subset(np.arange(0, len(dataset), 97))
    train_x = np.asarray(next(iter(_batches(subset, spec, batch_size=64, train=False, seed=0)))[0])
    for index, source in enumerate(subset.sources):
        runtime_x = preprocess(source, spec)
        np.testing.assert_allclose(train_x[index], runtime_x[0], atol=1e-5)
        rgb = cv2.cvtColor(cv2.imread(source), cv2.COLOR_BGR2RGB)  # an RGB array is the same image
        np.testing.assert_allclose(preprocess(rgb, spec, "rgb")[0], runtime_x[0], atol=1e-5)


@pytest.mark.parametrize("resize", ["stretch", "letterbox", "center_crop"])
@pytest.mark.parametrize("order, color", [("rgb", "bgr"), ("rgb", "rgb"), ("bgr", "rgb"), ("gray", "bgr")])
def test_reused_plans_and_late_channel_swap_give_the_same_pixels(resize, order, color):
    """predict()'s per-frame path (a plan with reused buffers, swap after shrinking) equals the plain path, frame
    after frame."""
    rng = np.random.default_rng(3)
    spec = Preprocessing((24, 32), order, resize=resize)
    for shape in [(480, 640, 3), (90, 120, 3), (12, 16, 3), (48, 64, 4), (40, 30)]:
        plan = PixelPlan(shape, np.uint8, color if len(shape) == 3 else "gray", spec, reuse=True)
        for _ in range(3):
            frame = rng.integers(0, 256, shape, dtype=np.uint8)
            plain = resize_image(to_color_order(frame, color if len(shape) == 3 else "gray", spec.color_order), spec)
            pixels = plan(frame)
            assert pixels.shape == (24, 32, 1 if order == "gray" else 3)
            np.testing.assert_array_equal(pixels, plain)


def test_stretch_is_area_halving_then_bilinear_with_the_swap_anywhere():
    """The plan against OpenCV called by hand: 640x480 BGR -> 2x area halving -> bilinear -> RGB."""
    frame = np.random.default_rng(5).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    half = cv2.resize(frame, (320, 240), interpolation=cv2.INTER_AREA)
    expected = cv2.cvtColor(cv2.resize(half, (224, 224), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
    plan = PixelPlan(frame.shape, frame.dtype, "bgr", Preprocessing(224), reuse=True)
    assert len(plan.steps) == 3  # halve, bilinear, then the swap on the smaller image
    np.testing.assert_array_equal(plan(frame), expected)
    np.testing.assert_array_equal(prepare_pixels(frame, Preprocessing(224), "bgr"), expected)


@pytest.mark.parametrize("resize", ["stretch", "letterbox", "center_crop"])
def test_linear_interpolation_is_one_bilinear_pass(resize):
    """interpolation="linear": one cv2 INTER_LINEAR resize from the frame, whatever the shrink factor; "area" halves
    first."""
    frame = np.random.default_rng(6).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    linear, area = Preprocessing(128, resize=resize, interpolation="linear"), Preprocessing(128, resize=resize)
    plan = PixelPlan(frame.shape, frame.dtype, "rgb", linear, reuse=True)
    new_w, new_h = {"stretch": (128, 128), "letterbox": (128, 96), "center_crop": (171, 128)}[resize]
    expected = cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    pixels = plan(frame)
    if resize == "letterbox":
        assert (pixels[:16] == 0).all() and (pixels[112:] == 0).all()  # padding rows
        pixels = pixels[16:112]
    elif resize == "center_crop":
        expected = expected[:, 21:149]
    np.testing.assert_array_equal(pixels, expected)
    np.testing.assert_array_equal(prepare_pixels(frame, linear), plan(frame))
    assert not np.array_equal(prepare_pixels(frame, area), plan(frame))  # noise aliases differently: the choice matters


@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
@pytest.mark.parametrize(
    "frame_shape, size",
    [
        ((480, 640, 3), 128),
        ((1080, 1920, 3), 128),
        ((96, 288), (32, 96)),
        ((45, 75, 4), (15, 25)),
        ((480, 640, 3), 96),
        ((720, 1280, 3), 128),
    ],
)
def test_odd_whole_shrink_factors_take_the_exact_shortcut_and_match_bilinear(resize, frame_shape, size):
    """5x, 15x, 3x: every output pixel's centre is a source pixel's, so the shortcut must equal INTER_LINEAR bit for
    bit;
    letterboxed frames land in the canvas itself, the padding kept frame after frame."""
    from runtimes.preprocess import _bilinear_flag

    rng = np.random.default_rng(7)
    spec = Preprocessing(size, resize=resize, interpolation="linear", pad_value=114, color_order="bgr")
    plan = PixelPlan(frame_shape, np.uint8, "bgr" if len(frame_shape) == 3 else "gray", spec, reuse=True)
    for _ in range(3):
        frame = rng.integers(0, 256, frame_shape, dtype=np.uint8)
        pixels = plan(frame)
        colour = frame if len(frame_shape) == 2 or frame_shape[2] == 3 else frame[..., :3]
        colour = cv2.cvtColor(colour, cv2.COLOR_GRAY2BGR) if colour.ndim == 2 else colour
        out_h, out_w = spec.input_size
        ratio = min(out_h / frame_shape[0], out_w / frame_shape[1]) if resize == "letterbox" else None
        new_w, new_h = (round(frame_shape[1] * ratio), round(frame_shape[0] * ratio)) if ratio else (out_w, out_h)
        expected = np.full((out_h, out_w, 3), 114, np.uint8)
        top, left = (out_h - new_h) // 2, (out_w - new_w) // 2
        expected[top : top + new_h, left : left + new_w] = cv2.resize(
            colour, (new_w, new_h), interpolation=cv2.INTER_LINEAR
        )
        np.testing.assert_array_equal(pixels, expected)
        np.testing.assert_array_equal(prepare_pixels(frame, spec, "bgr"), expected)
    assert _bilinear_flag(640, 480, 128, 96) == cv2.INTER_NEAREST_EXACT  # 5x: centres coincide
    assert _bilinear_flag(1280, 720, 128, 72) == cv2.INTER_LINEAR  # 10x: each output pixel averages two
    assert _bilinear_flag(640, 480, 224, 168) == cv2.INTER_LINEAR


def test_interpolation_travels_in_the_contract_and_area_stays_unwritten():
    from runtimes.contract import Interpolation, ModelContract

    linear = ModelContract(Preprocessing(64, interpolation="linear"), ("a", "b"))
    assert ModelContract.from_json(linear.to_json()).preprocessing.interpolation is Interpolation.LINEAR
    area = Preprocessing(64)
    assert (
        area.interpolation is Interpolation.AREA and "interpolation" not in area.to_dict()
    )  # as earlier contracts read
    assert Preprocessing.from_dict(area.to_dict()) == area
    with pytest.raises(edgekit.ContractError, match="invalid interpolation 'cubic'; valid values: 'area', 'linear'"):
        Preprocessing(64, interpolation="cubic")


# -- where the resize puts source pixels: box_mapping, to a quarter of a pixel -----------------------------------


def _centroid(values: np.ndarray) -> tuple[float, float]:
    """Centre of mass of a 2-D array in continuous pixel coordinates (pixel i spans [i, i + 1])."""
    ys, xs = np.mgrid[: values.shape[0], : values.shape[1]]
    mass = values.sum()
    return float((values * (xs + 0.5)).sum() / mass), float((values * (ys + 0.5)).sum() / mass)


# (source height, width), input size, resize: each has odd padding or an odd crop on one axis, where a
# half-pixel offset (padding / 2 instead of // 2) is half a model pixel: 7.5 source pixels at 1920 to 128
ODD_GEOMETRIES = [
    ((181, 300), 128, "letterbox"),
    ((300, 181), 128, "letterbox"),
    ((1080, 1920), 125, "letterbox"),
    ((479, 641), (99, 128), "letterbox"),
    ((181, 300), 127, "center_crop"),
    ((1080, 1920), (96, 125), "center_crop"),
    ((300, 181), 127, "center_crop"),
]


@pytest.mark.parametrize("interpolation", ["linear", "area"])
@pytest.mark.parametrize(
    "source, size, resize", ODD_GEOMETRIES, ids=[f"{s[1]}x{s[0]}-{r}" for s, _, r in ODD_GEOMETRIES]
)
@pytest.mark.parametrize("where", [(0.43, 0.56), (0.3, 0.7)], ids=["middle", "off-middle"])
def test_box_mapping_puts_a_blob_where_the_resize_does_within_a_quarter_pixel(
    source, size, resize, interpolation, where
):
    """A smooth blob's centre of mass, measured in the resized pixels, against box_mapping's prediction.

    The measurement is accurate to about 0.01 px (a Gaussian survives bilinear and area resizing); the
    bar is 0.25 px, so a half-pixel error in the offset or scale on either axis fails.
    """
    from runtimes.preprocess import box_mapping

    (height, width), spec = source, Preprocessing(size, resize=resize, interpolation=interpolation, pad_value=9)
    ys, xs = np.mgrid[:height, :width] + 0.5
    sigma = 0.06 * min(height, width)
    blob = np.exp(-((xs - where[0] * width) ** 2 + (ys - where[1] * height) ** 2) / (2 * sigma * sigma))
    image = np.repeat((9 + np.round(blob * 240))[..., None], 3, axis=2).astype(
        np.uint8
    )  # the padding's level around it
    expected = box_mapping(source, spec).to_input(np.array([_centroid(image[..., 0] - 9.0) * 2], np.float32))[0, :2]
    measured = _centroid(prepare_pixels(image, spec)[..., 0] - 9.0)
    assert np.abs(np.array(measured) - expected).max() < 0.25, (measured, expected)
    back = box_mapping(source, spec).to_source(np.array([measured * 2], np.float32))[0, :2]
    assert np.allclose(back, _centroid(image[..., 0] - 9.0), atol=0.25 / box_mapping(source, spec).scale_x)


@pytest.mark.parametrize(
    "source, size, resize, mapping",
    [
        ((181, 300), 128, "letterbox", (128 / 300, 77 / 181, 0.0, 25.0)),  # 77 rows placed 25 from the top (51 padded)
        ((300, 181), 128, "letterbox", (77 / 181, 128 / 300, 25.0, 0.0)),
        (
            (181, 300),
            127,
            "center_crop",
            (210 / 300, 127 / 181, -41.0, 0.0),
        ),  # 210 columns, 41 cut on the left (83 in all)
        ((100, 200), 50, "stretch", (0.25, 0.5, 0.0, 0.0)),
        ((64, 64), 64, "letterbox", (1.0, 1.0, 0.0, 0.0)),
    ],
)
def test_box_mapping_numbers(source, size, resize, mapping):
    from runtimes.preprocess import box_mapping

    found = box_mapping(source, Preprocessing(size, resize=resize))
    assert (found.scale_x, found.scale_y, found.offset_x, found.offset_y) == pytest.approx(mapping, abs=1e-9)
    box = np.array([[10.0, 20.0, 30.0, 50.0]], np.float32)
    np.testing.assert_allclose(found.to_source(found.to_input(box)), box, rtol=1e-5)


# -- files, empty images and exact messages ------------------------------------------------------------------------


def test_read_image_decodes_files_as_opencv_does_and_16_bit_pngs_to_8(tmp_path):
    rng = np.random.default_rng(11)
    bgr = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "colour.png"), bgr)
    decoded = read_image(tmp_path / "colour.png")
    assert decoded.dtype == np.uint8 and decoded.shape == (7, 9, 3)
    np.testing.assert_array_equal(decoded, bgr)
    deep = rng.integers(0, 65536, (5, 6), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    eight = read_image(tmp_path / "deep.png")
    assert eight.dtype == np.uint8 and eight.shape == (5, 6)
    np.testing.assert_array_equal(eight, (deep >> 8).astype(np.uint8))  # the high byte: 0..255 as the contract means
    assert (
        prepare_pixels(tmp_path / "colour.png", Preprocessing((7, 9)), "rgb")[0, 0].tolist() == bgr[0, 0, ::-1].tolist()
    )
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(InputError, match=r"cannot decode image .*empty.png: the file is corrupt or not an image"):
        read_image(tmp_path / "empty.png")
    unicode = tmp_path / "bild-ü.png"  # imdecode from bytes: any path the OS can open
    cv2.imencode(".png", bgr)[1].tofile(str(unicode))
    np.testing.assert_array_equal(read_image(unicode), bgr)


@pytest.mark.parametrize("shape", [(0, 4, 3), (4, 0, 3), (4, 4, 0), (0, 0), (4,), (1, 2, 3, 4)])
def test_empty_or_shapeless_images_are_named(shape):
    with pytest.raises(InputError) as refused:
        prepare_pixels(np.zeros(shape, np.uint8), Preprocessing(4))
    assert str(refused.value) == f"expected a non-empty image of shape HxW or HxWxC; got {shape}"


@pytest.mark.parametrize("shape", [(1, 7, 3), (7, 1, 3), (1, 1), (1, 1, 1)])
def test_one_pixel_wide_or_high_images_are_images(shape):
    image = np.full(shape, 90, np.uint8)
    assert prepare_pixels(image, Preprocessing((5, 6))).shape == (5, 6, 3)
    assert (prepare_pixels(image, Preprocessing((5, 6))) == 90).all()


def test_the_float_input_message_says_what_to_do():
    with pytest.raises(InputError) as refused:
        prepare_pixels(np.zeros((4, 4, 3), np.float64), Preprocessing(4))
    assert str(refused.value) == (
        "expected uint8 pixels, got dtype float64; pass 0..255 uint8 images to predict(), "
        "or an already preprocessed float batch to run()"
    )


def test_a_colour_image_into_a_gray_contract_uses_its_own_channel_order():
    rng = np.random.default_rng(12)
    bgr = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    spec = Preprocessing((6, 8), "gray")
    np.testing.assert_array_equal(prepare_pixels(bgr, spec, "bgr")[..., 0], cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    np.testing.assert_array_equal(prepare_pixels(rgb, spec, "rgb")[..., 0], cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    bgra = np.dstack([bgr, np.zeros((6, 8), np.uint8)])
    np.testing.assert_array_equal(prepare_pixels(bgra, spec, "bgr")[..., 0], cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))


# -- normalize and preprocess: the same float32 operations, in place when asked -------------------------------------


def test_normalize_is_float32_arithmetic_bit_for_bit():
    spec = Preprocessing(16, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), scale=1 / 255)
    pixels = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, axis=2).reshape(16, 16, 3)
    expected = (
        pixels.astype(np.float32) * np.float32(1 / 255) + np.float32(0.0) - np.float32([0.485, 0.456, 0.406])
    ) / np.float32([0.229, 0.224, 0.225])
    found = normalize(pixels, spec)
    assert found.dtype == np.float32 and found.shape == (1, 16, 16, 3)
    np.testing.assert_array_equal(found[0], expected.astype(np.float32))
    batch = np.stack([pixels, pixels[::-1]])
    assert normalize(batch, spec).shape == (2, 16, 16, 3)  # a batch stays a batch
    np.testing.assert_array_equal(normalize(batch, spec)[1], expected[::-1])
    out = np.empty((2, 16, 16, 3), np.float32)
    assert normalize(batch, spec, out=out) is out
    np.testing.assert_array_equal(out[0], expected)


def test_preprocess_is_prepare_then_normalize_for_arrays_and_files(tmp_path):
    rng = np.random.default_rng(13)
    bgr = rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "frame.png"), bgr)
    spec = Preprocessing((16, 24), resize="letterbox", scale=1 / 127.5, offset=-1.0)
    expected = normalize(prepare_pixels(bgr, spec, "bgr"), spec)
    np.testing.assert_array_equal(preprocess(bgr, spec, "bgr"), expected)
    np.testing.assert_array_equal(preprocess(tmp_path / "frame.png", spec), expected)  # files are read as BGR
    np.testing.assert_array_equal(preprocess(np.ascontiguousarray(bgr[..., ::-1]), spec), expected)


# -- reused plans: nothing allocated per frame, each step into its own buffer ---------------------------------------


@pytest.mark.parametrize("resize", ["stretch", "letterbox", "center_crop"])
@pytest.mark.parametrize(
    "shape, color, order",
    [
        ((480, 640, 3), "bgr", "rgb"),
        ((200, 240, 3), "bgr", "rgb"),
        ((120, 160, 3), "rgb", "rgb"),
        ((90, 120), "gray", "rgb"),
        ((120, 160, 4), "bgr", "rgb"),
        ((200, 240, 3), "bgr", "gray"),
        ((60, 80, 3), "bgr", "rgb"),
    ],
)  # growing: the swap comes first
def test_a_reused_plan_writes_the_same_buffers_and_allocates_nothing_per_frame(resize, shape, color, order):
    """predict()'s camera path: after the first frame, a frame costs OpenCV calls into buffers the plan owns."""
    import tracemalloc

    rng = np.random.default_rng(14)
    spec = Preprocessing((96, 128), order, resize=resize, interpolation="area")  # every buffer >= 12 kB
    plan = PixelPlan(shape, np.uint8, color, spec, reuse=True)
    frames = [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(3)]
    first = plan(frames[0])
    tracemalloc.start()
    try:
        second = plan(frames[1])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8192, f"{peak} bytes allocated for one frame"  # a few small objects, never an image
    assert second is first or np.shares_memory(second, first)  # overwritten in place: the documented contract
    np.testing.assert_array_equal(second, resize_image(to_color_order(frames[1], color, spec.color_order), spec))
    fresh = PixelPlan(shape, np.uint8, color, spec)  # the default: no reuse, every call allocates
    assert not np.shares_memory(fresh(frames[0]), fresh(frames[1]))


def test_a_letterbox_plan_keeps_its_padding_frame_after_frame():
    spec = Preprocessing((64, 64), resize="letterbox", pad_value=33, interpolation="linear")
    plan = PixelPlan((30, 60, 3), np.uint8, "rgb", spec, reuse=True)
    for value in (200, 0, 255):
        pixels = plan(np.full((30, 60, 3), value, np.uint8))
        assert (pixels[:16] == 33).all() and (pixels[48:] == 33).all() and (pixels[16:48] == value).all()


# -- geometry edge cases: extreme aspect, exact and near-exact halving ----------------------------------------------


@pytest.mark.parametrize(
    "source, size, resize, mapping, shape",
    [
        ((1, 1000), 64, "letterbox", (0.064, 1.0, 0.0, 31.0), (64, 64)),  # one row: the letterboxed strip keeps 1 row
        ((1000, 1), 64, "letterbox", (1.0, 0.064, 31.0, 0.0), (64, 64)),
        ((300, 181), 127, "center_crop", (127 / 181, 210 / 300, 0.0, -41.0), (127, 127)),  # the crop cuts rows here
    ],
)
def test_box_mapping_and_pixels_at_the_extremes(source, size, resize, mapping, shape):
    from runtimes.preprocess import box_mapping

    spec = Preprocessing(size, resize=resize)
    found = box_mapping(source, spec)
    assert (found.scale_x, found.scale_y, found.offset_x, found.offset_y) == pytest.approx(mapping, abs=1e-9)
    image = np.full((*source, 3), 255, np.uint8)
    pixels = prepare_pixels(image, spec)
    assert pixels.shape == (*shape, 3)
    lit = np.argwhere(pixels[..., 0] > 0)
    box = found.to_input(np.array([[0, 0, source[1], source[0]]], np.float32))[0]
    assert lit[:, 1].min() == max(0, int(box[0])) and lit[:, 0].min() == max(0, int(box[1]))
    assert (lit.max(axis=0) - lit.min(axis=0) + 1).tolist() == [
        min(shape[0], round(box[3] - box[1])),
        min(shape[1], round(box[2] - box[0])),
    ]  # rows, columns


def test_box_mapping_returns_float32_for_many_boxes():
    from runtimes.preprocess import box_mapping

    mapping = box_mapping((480, 640), Preprocessing(128, resize="letterbox"))
    boxes = np.array([[0, 0, 640, 480], [320, 240, 330, 250], [10.5, 20.25, 30, 40]], np.float64)
    to_input = mapping.to_input(boxes)
    assert to_input.dtype == np.float32 and to_input.shape == (3, 4)
    np.testing.assert_allclose(to_input[0], [0, 16, 128, 112], atol=1e-5)
    back = mapping.to_source(to_input.astype(np.float64))
    assert back.dtype == np.float32 and back.shape == (3, 4)
    np.testing.assert_allclose(back, boxes, atol=1e-3)
    assert mapping.to_input(boxes.ravel()).shape == (3, 4)  # flat input: boxes of four


@pytest.mark.parametrize(
    "frame_shape, size",
    [
        ((400, 100, 3), 64),
        ((100, 400, 3), 64),
        ((257, 129, 3), 64),
        ((300, 128, 3), 64),
        ((128, 300, 3), 64),
        ((128, 128, 3), 64),
        ((129, 255, 3), 64),
        ((641, 481, 3), 80),
    ],
)
def test_area_halving_happens_only_while_both_sides_are_twice_the_target(frame_shape, size):
    """The oracle: OpenCV called by hand, halving with INTER_AREA while both sides are >= 2x, then one bilinear pass."""
    frame = np.random.default_rng(15).integers(0, 256, frame_shape, dtype=np.uint8)
    expected, (h, w) = frame, frame_shape[:2]
    while w >= 2 * size and h >= 2 * size:
        h, w = h // 2, w // 2
        expected = cv2.resize(expected, (w, h), interpolation=cv2.INTER_AREA)
    if (w, h) != (size, size):
        expected = cv2.resize(expected, (size, size), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(prepare_pixels(frame, Preprocessing(size)), expected)
