"""Table-driven tests for the pure IIIF request parser/resolver (iiif_server.tiles.request).

Every row is one case. Unless a row says otherwise, the image is 1000x800 and the
limits are the server defaults: maxWidth 12000, maxHeight 12000, maxArea 50,000,000.
"""

from __future__ import annotations

import pytest

from iiif_server.errors import RequestError
from iiif_server.tiles.request import (
    FORMATS,
    QUALITIES,
    ImageRequest,
    Limits,
    Plan,
    Region,
    Size,
    max_size,
    parse,
    parse_quality_format,
    parse_region,
    parse_rotation,
    parse_size,
    resolve,
)

W, H = 1000, 800
DEFAULT = Limits(12000, 12000, 50_000_000)
TIGHT = Limits(600, 600, 200_000)
NO_LIMITS = Limits()


def row(*values: object, id: str) -> object:
    return pytest.param(*values, id=id)


def assert_400(func, *args) -> RequestError:
    with pytest.raises(RequestError) as info:
        func(*args)
    assert info.value.status == 400
    return info.value


def plan_for(version: int, region: str, size: str, width: int = W, height: int = H, limits: Limits = DEFAULT) -> Plan:
    return resolve(parse(version, region, size, "0", "default.jpg"), width, height, limits)


def crop_and_output(plan: Plan) -> tuple[int, int, int, int, int, int]:
    return plan.x, plan.y, plan.w, plan.h, plan.out_w, plan.out_h


# --------------------------------------------------------------------------- errors


def test_request_error_defaults_to_status_400_and_keeps_message():
    err = RequestError("bad thing")
    assert (err.status, err.message, str(err)) == (400, "bad thing", "bad thing")


def test_request_error_keeps_an_explicit_status():
    assert RequestError("gone", status=404).status == 404


# --------------------------------------------------------------------------- region parsing

VALID_REGIONS = [
    row("full", Region("full"), id="full"),
    row("square", Region("square"), id="square"),
    row("0,0,10,20", Region("px", 0, 0, 10, 20), id="px_at_origin"),
    row("125,15,120,140", Region("px", 125, 15, 120, 140), id="px_spec_example"),
    row("010,020,030,040", Region("px", 10, 20, 30, 40), id="px_leading_zeros"),
    row("999999999,0,999999999,1", Region("px", 999999999, 0, 999999999, 1), id="px_nine_digits_allowed"),
    row("pct:0,0,100,100", Region("pct", 0, 0, 100, 100), id="pct_whole"),
    row("pct:41.6,7.5,40,70", Region("pct", 41.6, 7.5, 40, 70), id="pct_spec_example_floats"),
    row("pct:10.25,20.5,30.125,40.0625", Region("pct", 10.25, 20.5, 30.125, 40.0625), id="pct_all_floats"),
    row("pct:.5,0,.5,1", Region("pct", 0.5, 0, 0.5, 1), id="pct_no_leading_zero"),
    row("pct:0,0,150,150", Region("pct", 0, 0, 150, 150), id="pct_above_100_parses"),
]


@pytest.mark.parametrize(("text", "expected"), VALID_REGIONS)
def test_valid_region_parses_to_exact_values(text, expected):
    assert parse_region(text) == expected


MALFORMED_REGIONS = [
    row("", id="empty"),
    row(" ", id="space_only"),
    row("Full", id="wrong_case_full"),
    row("FULL", id="upper_case_full"),
    row("full ", id="trailing_space"),
    row(" full", id="leading_space"),
    row("squares", id="misspelt_square"),
    row("max", id="size_keyword_as_region"),
    row("-1,0,10,10", id="negative_x"),
    row("0,0,-10,10", id="negative_w"),
    row("-0,0,10,10", id="minus_zero"),
    row("+1,0,10,10", id="plus_sign"),
    row("1e3,0,10,10", id="exponent"),
    row("0x10,0,10,10", id="hex"),
    row("0, 0,10,10", id="inner_space"),
    row("0,0,10,10 ", id="trailing_space_after_numbers"),
    row("10,10,10", id="three_parts"),
    row("10,10,10,10,10", id="five_parts"),
    row("10,10,,10", id="empty_part"),
    row(",10,10,10", id="leading_comma"),
    row("10,10,10,", id="trailing_comma"),
    row("10.5,0,10,10", id="px_float"),
    row("0,0,10,10.0", id="px_float_zero_fraction"),
    row("0,0,0,10", id="zero_width"),
    row("0,0,10,0", id="zero_height"),
    row("0,0,000,10", id="zero_width_padded"),
    row("pct:", id="pct_nothing"),
    row("pct:10,10,10", id="pct_three_parts"),
    row("pct:10,10,10,10,10", id="pct_five_parts"),
    row("pct:-1,0,10,10", id="pct_negative"),
    row("pct:+1,0,10,10", id="pct_plus_sign"),
    row("pct:1e1,0,10,10", id="pct_exponent"),
    row("pct:0,0,0,10", id="pct_zero_width"),
    row("pct:0,0,10,0.0", id="pct_zero_height_float"),
    row("pct:5.,0,10,10", id="pct_trailing_dot"),
    row("pct:.,0,10,10", id="pct_lone_dot"),
    row("pct :0,0,10,10", id="pct_space_before_colon"),
    row("PCT:0,0,10,10", id="pct_upper_case"),
    row("pct:0,0,10,10%", id="pct_percent_sign"),
    row("1234567890,0,10,10", id="x_ten_digits"),
    row("0,0,10,1234567890", id="h_ten_digits"),
    row("pct:1234567890,0,10,10", id="pct_ten_digits"),
    row("\u0661\u0662,0,10,10", id="arabic_indic_digits"),
    row("0,0,\uff11\uff10,10", id="fullwidth_digits"),
    row("pct:\u0661\u0662,0,10,10", id="pct_arabic_indic_digits"),
    row("0,0,10,10\n", id="trailing_newline"),
    row("pct:0,0,10,10\n", id="pct_trailing_newline"),
]


@pytest.mark.parametrize("text", MALFORMED_REGIONS)
def test_malformed_region_is_400(text):
    assert_400(parse_region, text)


def test_zero_width_region_is_400():
    assert "zero" in assert_400(parse_region, "0,0,0,10").message


# --------------------------------------------------------------------------- size parsing

VALID_SIZES = [
    # Image API 3.0
    row(3, "max", Size("max"), id="v3_max"),
    row(3, "^max", Size("max", upscale=True), id="v3_up_max"),
    row(3, "150,", Size("w", 150, None), id="v3_w"),
    row(3, "^1500,", Size("w", 1500, None, upscale=True), id="v3_up_w"),
    row(3, ",150", Size("h", None, 150), id="v3_h"),
    row(3, "^,1500", Size("h", None, 1500, upscale=True), id="v3_up_h"),
    row(3, "pct:50", Size("pct", pct=50.0), id="v3_pct"),
    row(3, "pct:12.5", Size("pct", pct=12.5), id="v3_pct_float"),
    row(3, "pct:.5", Size("pct", pct=0.5), id="v3_pct_no_leading_zero"),
    row(3, "pct:150", Size("pct", pct=150.0), id="v3_pct_above_100_parses"),
    row(3, "^pct:150", Size("pct", pct=150.0, upscale=True), id="v3_up_pct"),
    row(3, "225,100", Size("wh", 225, 100), id="v3_wh"),
    row(3, "^2250,1000", Size("wh", 2250, 1000, upscale=True), id="v3_up_wh"),
    row(3, "!225,100", Size("confined", 225, 100), id="v3_confined"),
    row(3, "^!2250,1000", Size("confined", 2250, 1000, upscale=True), id="v3_up_confined"),
    row(3, "007,", Size("w", 7, None), id="v3_leading_zeros"),
    row(3, "999999999,", Size("w", 999999999, None), id="v3_nine_digits_allowed"),
    # Image API 2.1
    row(2, "full", Size("full"), id="v2_full"),
    row(2, "max", Size("max"), id="v2_max"),
    row(2, "150,", Size("w", 150, None), id="v2_w"),
    row(2, ",150", Size("h", None, 150), id="v2_h"),
    row(2, "pct:50", Size("pct", pct=50.0), id="v2_pct"),
    row(2, "pct:150", Size("pct", pct=150.0), id="v2_pct_above_100"),
    row(2, "225,100", Size("wh", 225, 100), id="v2_wh"),
    row(2, "!225,100", Size("confined", 225, 100), id="v2_confined"),
]


@pytest.mark.parametrize(("version", "text", "expected"), VALID_SIZES)
def test_valid_size_parses_to_exact_values(version, text, expected):
    assert parse_size(text, version) == expected


MALFORMED_SIZES = [
    row(3, "", id="v3_empty"),
    row(3, " ", id="v3_space_only"),
    row(3, "full", id="v3_full_replaced_by_max"),
    row(3, "^full", id="v3_up_full"),
    row(3, "MAX", id="v3_upper_case_max"),
    row(3, "max ", id="v3_trailing_space"),
    row(3, "max\n", id="v3_max_trailing_newline"),
    row(3, "^ max", id="v3_space_after_caret"),
    row(3, "^^max", id="v3_double_caret"),
    row(3, "^", id="v3_caret_alone"),
    row(3, "!", id="v3_bang_alone"),
    row(3, "^!", id="v3_caret_bang_alone"),
    row(3, ",", id="v3_comma_alone"),
    row(3, "!,", id="v3_bang_comma"),
    row(3, "!10,", id="v3_confined_without_height"),
    row(3, "!,10", id="v3_confined_without_width"),
    row(3, "^!10,", id="v3_up_confined_without_height"),
    row(3, "!!10,10", id="v3_double_bang"),
    row(3, "!^10,10", id="v3_bang_before_caret"),
    row(3, "-1,", id="v3_negative_w"),
    row(3, ",-1", id="v3_negative_h"),
    row(3, "-0,", id="v3_minus_zero"),
    row(3, "+10,", id="v3_plus_sign"),
    row(3, "1e3,", id="v3_exponent"),
    row(3, "0x10,", id="v3_hex"),
    row(3, "10 ,", id="v3_space_before_comma"),
    row(3, " 10,", id="v3_leading_space"),
    row(3, "10, 10", id="v3_space_after_comma"),
    row(3, "10.5,", id="v3_float_w"),
    row(3, "10,10.5", id="v3_float_h"),
    row(3, "10,10,", id="v3_extra_comma"),
    row(3, "10,10,10", id="v3_three_parts"),
    row(3, "10", id="v3_missing_comma"),
    row(3, "0,", id="v3_zero_w"),
    row(3, ",0", id="v3_zero_h"),
    row(3, "0,10", id="v3_zero_w_with_h"),
    row(3, "10,0", id="v3_zero_h_with_w"),
    row(3, "000,", id="v3_zero_w_padded"),
    row(3, "!0,10", id="v3_confined_zero_w"),
    row(3, "^0,", id="v3_up_zero_w"),
    row(3, "pct:", id="v3_pct_nothing"),
    row(3, "pct:0", id="v3_pct_zero"),
    row(3, "pct:0.0", id="v3_pct_zero_float"),
    row(3, "^pct:0", id="v3_up_pct_zero"),
    row(3, "pct:-5", id="v3_pct_negative"),
    row(3, "pct:+5", id="v3_pct_plus_sign"),
    row(3, "pct:1e2", id="v3_pct_exponent"),
    row(3, "pct:5.", id="v3_pct_trailing_dot"),
    row(3, "pct:50,", id="v3_pct_with_comma"),
    row(3, "pct:50%", id="v3_pct_percent_sign"),
    row(3, "pct: 50", id="v3_pct_space"),
    row(3, "1234567890,", id="v3_w_ten_digits"),
    row(3, ",1234567890", id="v3_h_ten_digits"),
    row(3, "pct:1234567890", id="v3_pct_ten_digits"),
    row(3, "\u0661\u0662,", id="v3_arabic_indic_w"),
    row(3, ",\u0661\u0662", id="v3_arabic_indic_h"),
    row(3, "pct:\u0661\u0662", id="v3_arabic_indic_pct"),
    row(3, "10,\n", id="v3_trailing_newline"),
    row(2, "", id="v2_empty"),
    row(2, "Full", id="v2_wrong_case_full"),
    row(2, "^max", id="v2_caret_max"),
    row(2, "^full", id="v2_caret_full"),
    row(2, "^10,", id="v2_caret_w"),
    row(2, "^,10", id="v2_caret_h"),
    row(2, "^pct:50", id="v2_caret_pct"),
    row(2, "^10,10", id="v2_caret_wh"),
    row(2, "^!10,10", id="v2_caret_confined"),
    row(2, "!10,", id="v2_confined_without_height"),
    row(2, "0,", id="v2_zero_w"),
    row(2, ",0", id="v2_zero_h"),
    row(2, "pct:0", id="v2_pct_zero"),
    row(2, "-10,", id="v2_negative"),
    row(2, "\u0661\u0662,", id="v2_arabic_indic"),
]


@pytest.mark.parametrize(("version", "text"), MALFORMED_SIZES)
def test_malformed_size_is_400(version, text):
    assert_400(parse_size, text, version)


def test_full_size_in_v3_is_400_and_says_max_replaced_it():
    assert "max" in assert_400(parse_size, "full", 3).message


# --------------------------------------------------------------------------- rotation parsing

VALID_ROTATIONS = [
    row("0", (False, 0.0), id="zero"),
    row("90", (False, 90.0), id="ninety"),
    row("180", (False, 180.0), id="one_eighty"),
    row("270", (False, 270.0), id="two_seventy"),
    row("22.5", (False, 22.5), id="float"),
    row("22.50", (False, 22.5), id="float_trailing_zero"),
    row(".5", (False, 0.5), id="float_no_leading_zero"),
    row("090", (False, 90.0), id="leading_zero"),
    row("359.999", (False, 359.999), id="just_below_360"),
    row("360", (False, 0.0), id="full_turn_is_zero"),
    row("360.0", (False, 0.0), id="full_turn_float_is_zero"),
    row("!0", (True, 0.0), id="mirror"),
    row("!180", (True, 180.0), id="mirror_180"),
    row("!22.5", (True, 22.5), id="mirror_float"),
    row("!360", (True, 0.0), id="mirror_full_turn"),
]


@pytest.mark.parametrize(("text", "expected"), VALID_ROTATIONS)
def test_valid_rotation_parses_to_mirror_and_angle(text, expected):
    assert parse_rotation(text) == expected


MALFORMED_ROTATIONS = [
    row("", id="empty"),
    row(" ", id="space_only"),
    row("-90", id="negative"),
    row("-0", id="minus_zero"),
    row("+90", id="plus_sign"),
    row("1e3", id="exponent"),
    row("1e2", id="exponent_in_range"),
    row("0x10", id="hex"),
    row(" 90", id="leading_space"),
    row("90 ", id="trailing_space"),
    row("9 0", id="inner_space"),
    row("90.", id="trailing_dot"),
    row(".", id="lone_dot"),
    row("90,0", id="comma"),
    row("ninety", id="word"),
    row("!", id="bang_alone"),
    row("!!90", id="double_bang"),
    row("90!", id="bang_after"),
    row("! 90", id="space_after_bang"),
    row("360.0001", id="just_above_360"),
    row("361", id="above_360"),
    row("720", id="two_turns"),
    row("!361", id="mirror_above_360"),
    row("1234567890", id="ten_digits"),
    row("\u0669\u0660", id="arabic_indic_digits"),
    row("\uff19\uff10", id="fullwidth_digits"),
    row("90\n", id="trailing_newline"),
]


@pytest.mark.parametrize("text", MALFORMED_ROTATIONS)
def test_malformed_rotation_is_400(text):
    assert_400(parse_rotation, text)


# --------------------------------------------------------------------------- quality and format


@pytest.mark.parametrize("quality", ["default", "color", "gray", "bitonal"])
@pytest.mark.parametrize("fmt", ["jpg", "png", "webp", "tif", "gif", "jp2", "pdf"])
def test_every_quality_and_format_parses(quality, fmt):
    assert parse_quality_format(f"{quality}.{fmt}") == (quality, fmt)


def test_exactly_the_spec_qualities_and_formats_are_known():
    assert set(QUALITIES) == {"default", "color", "gray", "bitonal"}
    assert FORMATS == {
        "jpg": "image/jpeg",
        "png": "image/png",
        "webp": "image/webp",
        "tif": "image/tiff",
        "gif": "image/gif",
        "jp2": "image/jp2",
        "pdf": "application/pdf",
    }


MALFORMED_QUALITY_FORMATS = [
    row("", id="empty"),
    row("default", id="missing_dot"),
    row("defaultjpg", id="missing_dot_joined"),
    row("default,jpg", id="comma_not_dot"),
    row("default.", id="missing_format"),
    row(".jpg", id="missing_quality"),
    row(".", id="dot_only"),
    row("default.xyz", id="unknown_format"),
    row("default.jpeg", id="jpeg_is_not_jpg"),
    row("default.tiff", id="tiff_is_not_tif"),
    row("default.JPG", id="upper_case_format"),
    row("Default.jpg", id="upper_case_quality"),
    row("grey.jpg", id="british_grey"),
    row("native.jpg", id="v1_native"),
    row("colour.jpg", id="british_colour"),
    row("default.jpg.png", id="two_formats"),
    row("default..jpg", id="double_dot"),
    row("default .jpg", id="space_before_dot"),
    row("default.jpg ", id="trailing_space"),
    row("default.jpg\n", id="trailing_newline"),
]


@pytest.mark.parametrize("text", MALFORMED_QUALITY_FORMATS)
def test_malformed_quality_or_format_is_400(text):
    assert_400(parse_quality_format, text)


# --------------------------------------------------------------------------- whole-request parsing


def test_parse_builds_the_full_v3_request():
    assert parse(3, "pct:10,20,30,40", "^!500,400", "!22.5", "gray.png") == ImageRequest(
        version=3,
        region=Region("pct", 10, 20, 30, 40),
        size=Size("confined", 500, 400, upscale=True),
        mirror=True,
        rotation=22.5,
        quality="gray",
        format="png",
    )


def test_parse_builds_the_full_v2_request():
    assert parse(2, "square", "full", "90", "bitonal.tif") == ImageRequest(
        version=2,
        region=Region("square"),
        size=Size("full"),
        mirror=False,
        rotation=90.0,
        quality="bitonal",
        format="tif",
    )


BAD_WHOLE_REQUESTS = [
    row(3, "0,0,0,10", "max", "0", "default.jpg", id="v3_bad_region"),
    row(3, "full", "full", "0", "default.jpg", id="v3_bad_size"),
    row(3, "full", "max", "-90", "default.jpg", id="v3_bad_rotation"),
    row(3, "full", "max", "0", "default.xyz", id="v3_bad_format"),
    row(3, "full", "max", "0", "best.jpg", id="v3_bad_quality"),
    row(2, "full", "^max", "0", "default.jpg", id="v2_caret_size"),
    row(2, "full", "full", "!", "default.jpg", id="v2_bang_alone_rotation"),
    row(2, "pct:", "full", "0", "default.jpg", id="v2_empty_pct_region"),
]


@pytest.mark.parametrize(("version", "region", "size", "rotation", "qf"), BAD_WHOLE_REQUESTS)
def test_parse_with_any_bad_parameter_is_400(version, region, size, rotation, qf):
    assert_400(parse, version, region, size, rotation, qf)


# --------------------------------------------------------------------------- resolve: valid
# columns: version, region, size, (image w, h), limits, (x, y, w, h, out_w, out_h)

RESOLVED = [
    # regions (3.0, size max)
    row(3, "full", "max", (W, H), DEFAULT, (0, 0, 1000, 800, 1000, 800), id="v3_full_max"),
    row(3, "square", "max", (W, H), DEFAULT, (100, 0, 800, 800, 800, 800), id="v3_square_centred_landscape"),
    row(3, "square", "max", (800, 1000), DEFAULT, (0, 100, 800, 800, 800, 800), id="v3_square_centred_portrait"),
    row(3, "square", "max", (1001, 800), DEFAULT, (100, 0, 800, 800, 800, 800), id="v3_square_odd_margin"),
    row(3, "square", "max", (1000, 1000), DEFAULT, (0, 0, 1000, 1000, 1000, 1000), id="v3_square_of_square"),
    row(3, "10,20,300,400", "max", (W, H), DEFAULT, (10, 20, 300, 400, 300, 400), id="v3_px_exact"),
    row(3, "900,700,200,200", "max", (W, H), DEFAULT, (900, 700, 100, 100, 100, 100), id="v3_px_clipped_right_bottom"),
    row(3, "0,0,5000,5000", "max", (W, H), DEFAULT, (0, 0, 1000, 800, 1000, 800), id="v3_px_clipped_to_full"),
    row(3, "999,799,10,10", "max", (W, H), DEFAULT, (999, 799, 1, 1, 1, 1), id="v3_px_last_pixel"),
    row(3, "pct:10,10,50,50", "max", (W, H), DEFAULT, (100, 80, 500, 400, 500, 400), id="v3_pct_region"),
    row(3, "pct:12.5,25,12.5,25", "max", (W, H), DEFAULT, (125, 200, 125, 200, 125, 200), id="v3_pct_float"),
    row(3, "pct:0,0,100,100", "max", (W, H), DEFAULT, (0, 0, 1000, 800, 1000, 800), id="v3_pct_whole"),
    row(3, "pct:50,50,100,100", "max", (W, H), DEFAULT, (500, 400, 500, 400, 500, 400), id="v3_pct_clipped"),
    row(3, "pct:41.6,7.5,40,70", "max", (W, H), DEFAULT, (416, 60, 400, 560, 400, 560), id="v3_pct_spec_example"),
    # sizes on the full 1000x800 region (3.0)
    row(3, "full", "500,", (W, H), DEFAULT, (0, 0, 1000, 800, 500, 400), id="v3_w"),
    row(3, "full", "^500,", (W, H), DEFAULT, (0, 0, 1000, 800, 500, 400), id="v3_up_w_downscaling"),
    row(3, "full", ",400", (W, H), DEFAULT, (0, 0, 1000, 800, 500, 400), id="v3_h"),
    row(3, "full", "^,400", (W, H), DEFAULT, (0, 0, 1000, 800, 500, 400), id="v3_up_h_downscaling"),
    row(3, "full", "pct:50", (W, H), DEFAULT, (0, 0, 1000, 800, 500, 400), id="v3_pct"),
    row(3, "full", "^pct:50", (W, H), DEFAULT, (0, 0, 1000, 800, 500, 400), id="v3_up_pct_downscaling"),
    row(3, "full", "pct:25.5", (W, H), DEFAULT, (0, 0, 1000, 800, 255, 204), id="v3_pct_float"),
    row(3, "full", "pct:100", (W, H), DEFAULT, (0, 0, 1000, 800, 1000, 800), id="v3_pct_100"),
    row(3, "full", "500,300", (W, H), DEFAULT, (0, 0, 1000, 800, 500, 300), id="v3_wh_distorting"),
    row(3, "full", "^500,300", (W, H), DEFAULT, (0, 0, 1000, 800, 500, 300), id="v3_up_wh_downscaling"),
    row(3, "full", "1000,800", (W, H), DEFAULT, (0, 0, 1000, 800, 1000, 800), id="v3_wh_region_size"),
    row(3, "full", "1000,", (W, H), DEFAULT, (0, 0, 1000, 800, 1000, 800), id="v3_w_region_width"),
    row(3, "full", "!500,500", (W, H), DEFAULT, (0, 0, 1000, 800, 500, 400), id="v3_confined_keeps_ratio"),
    row(3, "full", "^!500,500", (W, H), DEFAULT, (0, 0, 1000, 800, 500, 400), id="v3_up_confined_downscaling"),
    row(3, "full", "!600,300", (W, H), DEFAULT, (0, 0, 1000, 800, 375, 300), id="v3_confined_height_bound"),
    row(3, "full", "!1000,1000", (W, H), DEFAULT, (0, 0, 1000, 800, 1000, 800), id="v3_confined_region_fits_box"),
    row(3, "full", "1,", (W, H), DEFAULT, (0, 0, 1000, 800, 1, 1), id="v3_one_pixel_wide"),
    row(3, "full", ",1", (W, H), DEFAULT, (0, 0, 1000, 800, 1, 1), id="v3_one_pixel_high"),
    row(3, "full", "3,", (W, H), DEFAULT, (0, 0, 1000, 800, 3, 2), id="v3_w_rounds_height"),
    # 3.0 upscaling with ^ (up to the limits)
    row(3, "full", "^1200,", (W, H), DEFAULT, (0, 0, 1000, 800, 1200, 960), id="v3_up_w"),
    row(3, "full", "^,1000", (W, H), DEFAULT, (0, 0, 1000, 800, 1250, 1000), id="v3_up_h"),
    row(3, "full", "^pct:150", (W, H), DEFAULT, (0, 0, 1000, 800, 1500, 1200), id="v3_up_pct"),
    row(3, "full", "^1500,1000", (W, H), DEFAULT, (0, 0, 1000, 800, 1500, 1000), id="v3_up_wh"),
    row(3, "full", "^1000,900", (W, H), DEFAULT, (0, 0, 1000, 800, 1000, 900), id="v3_up_wh_height_only"),
    row(3, "full", "^!2000,3000", (W, H), DEFAULT, (0, 0, 1000, 800, 2000, 1600), id="v3_up_confined"),
    row(3, "full", "^!2000,1000", (W, H), DEFAULT, (0, 0, 1000, 800, 1250, 1000), id="v3_up_confined_height_bound"),
    row(3, "full", "^7000,7000", (W, H), DEFAULT, (0, 0, 1000, 800, 7000, 7000), id="v3_up_just_under_area"),
    row(3, "full", "^12000,4000", (W, H), DEFAULT, (0, 0, 1000, 800, 12000, 4000), id="v3_up_at_max_width"),
    row(3, "full", "^4000,12000", (W, H), DEFAULT, (0, 0, 1000, 800, 4000, 12000), id="v3_up_at_max_height"),
    row(3, "full", "^max", (W, H), DEFAULT, (0, 0, 1000, 800, 7905, 6324), id="v3_up_max_to_area_limit"),
    row(3, "full", "^max", (W, H), NO_LIMITS, (0, 0, 1000, 800, 1000, 800), id="v3_up_max_without_limits"),
    row(3, "full", "max", (W, H), NO_LIMITS, (0, 0, 1000, 800, 1000, 800), id="v3_max_without_limits"),
    row(3, "full", "^!2000,3000", (W, H), NO_LIMITS, (0, 0, 1000, 800, 2000, 1600), id="v3_up_confined_no_limits"),
    row(3, "full", "^!2000,3000", (1000, 1000), DEFAULT, (0, 0, 1000, 1000, 2000, 2000), id="v3_up_confined_validator"),
    row(3, "full", "^!2000,500", (1000, 1000), DEFAULT, (0, 0, 1000, 1000, 500, 500), id="v3_up_confined_no_upscale"),
    row(3, "full", "^max", (1000, 1000), DEFAULT, (0, 0, 1000, 1000, 7071, 7071), id="v3_up_max_square_area"),
    # size applied to a cropped region
    row(3, "pct:10,10,50,50", "250,", (W, H), DEFAULT, (100, 80, 500, 400, 250, 200), id="v3_pct_region_then_w"),
    row(3, "10,20,300,400", ",200", (W, H), DEFAULT, (10, 20, 300, 400, 150, 200), id="v3_px_region_then_h"),
    row(3, "square", "pct:50", (W, H), DEFAULT, (100, 0, 800, 800, 400, 400), id="v3_square_then_pct"),
    row(3, "10,20,300,400", "^600,", (W, H), DEFAULT, (10, 20, 300, 400, 600, 800), id="v3_px_region_upscaled"),
    # tighter limits: max scales down, anything within them is served
    row(3, "full", "max", (W, H), TIGHT, (0, 0, 1000, 800, 500, 400), id="v3_max_down_to_area"),
    row(3, "full", "^max", (W, H), TIGHT, (0, 0, 1000, 800, 500, 400), id="v3_up_max_down_to_area"),
    row(3, "full", "500,400", (W, H), TIGHT, (0, 0, 1000, 800, 500, 400), id="v3_exactly_max_area"),
    row(3, "full", "400,", (W, H), TIGHT, (0, 0, 1000, 800, 400, 320), id="v3_under_tight_limits"),
    row(3, "full", "600,100", (W, H), TIGHT, (0, 0, 1000, 800, 600, 100), id="v3_exactly_max_width"),
    row(3, "full", "^!2000,2000", (W, H), TIGHT, (0, 0, 1000, 800, 500, 400), id="v3_up_confined_clamped"),
    row(3, "full", "!800,800", (W, H), TIGHT, (0, 0, 1000, 800, 500, 400), id="v3_confined_clamped"),
    row(3, "full", "max", (W, H), Limits(600, None, None), (0, 0, 1000, 800, 600, 480), id="v3_max_to_width"),
    row(3, "full", "^max", (W, H), Limits(600, None, None), (0, 0, 1000, 800, 600, 480), id="v3_up_max_to_width"),
    row(3, "full", "max", (W, H), Limits(None, 500, None), (0, 0, 1000, 800, 625, 500), id="v3_max_to_height"),
    row(3, "full", "max", (W, H), Limits(None, None, 100_000), (0, 0, 1000, 800, 353, 282), id="v3_max_to_area"),
    row(3, "full", "^max", (W, H), Limits(3000, 1600, None), (0, 0, 1000, 800, 2000, 1600), id="v3_up_max_to_height"),
    row(3, "full", "max", (608, 304), Limits(500, None, None), (0, 0, 608, 304, 500, 250), id="v3_max_exact_width"),
    row(3, "full", "^max", (7, 7), Limits(495, None, None), (0, 0, 7, 7, 495, 495), id="v3_up_max_exact_width"),
    # Image API 2.1: full, max, and upscaling without ^
    row(2, "full", "full", (W, H), DEFAULT, (0, 0, 1000, 800, 1000, 800), id="v2_full_full"),
    row(2, "full", "max", (W, H), DEFAULT, (0, 0, 1000, 800, 1000, 800), id="v2_max_does_not_upscale"),
    row(2, "square", "full", (W, H), DEFAULT, (100, 0, 800, 800, 800, 800), id="v2_square"),
    row(2, "pct:10,10,50,50", "full", (W, H), DEFAULT, (100, 80, 500, 400, 500, 400), id="v2_pct_region"),
    row(2, "full", "500,", (W, H), DEFAULT, (0, 0, 1000, 800, 500, 400), id="v2_w"),
    row(2, "full", ",400", (W, H), DEFAULT, (0, 0, 1000, 800, 500, 400), id="v2_h"),
    row(2, "full", "pct:50", (W, H), DEFAULT, (0, 0, 1000, 800, 500, 400), id="v2_pct"),
    row(2, "full", "500,300", (W, H), DEFAULT, (0, 0, 1000, 800, 500, 300), id="v2_wh"),
    row(2, "full", "!500,500", (W, H), DEFAULT, (0, 0, 1000, 800, 500, 400), id="v2_confined_keeps_ratio"),
    row(2, "full", "1200,", (W, H), DEFAULT, (0, 0, 1000, 800, 1200, 960), id="v2_w_upscales"),
    row(2, "full", ",1000", (W, H), DEFAULT, (0, 0, 1000, 800, 1250, 1000), id="v2_h_upscales"),
    row(2, "full", "pct:150", (W, H), DEFAULT, (0, 0, 1000, 800, 1500, 1200), id="v2_pct_upscales"),
    row(2, "full", "1500,1000", (W, H), DEFAULT, (0, 0, 1000, 800, 1500, 1000), id="v2_wh_upscales"),
    row(2, "full", "!2000,3000", (W, H), DEFAULT, (0, 0, 1000, 800, 2000, 1600), id="v2_confined_upscales"),
    row(2, "full", "1200,", (1000, 1000), DEFAULT, (0, 0, 1000, 1000, 1200, 1200), id="v2_w_upscales_square"),
    row(2, "full", "max", (W, H), TIGHT, (0, 0, 1000, 800, 500, 400), id="v2_max_down_to_limits"),
    row(2, "full", "!2000,2000", (W, H), TIGHT, (0, 0, 1000, 800, 500, 400), id="v2_confined_clamped"),
]


@pytest.mark.parametrize(("version", "region", "size", "image", "limits", "expected"), RESOLVED)
def test_resolve_gives_exact_crop_and_output_size(version, region, size, image, limits, expected):
    assert crop_and_output(plan_for(version, region, size, *image, limits)) == expected


# --------------------------------------------------------------------------- resolve: refused
# columns: version, region, size, (image w, h), limits

REFUSED = [
    # regions entirely outside the image, or rounding to nothing
    row(3, "1000,0,10,10", "max", (W, H), DEFAULT, id="v3_region_x_at_width"),
    row(3, "0,800,10,10", "max", (W, H), DEFAULT, id="v3_region_y_at_height"),
    row(3, "5000,5000,10,10", "max", (W, H), DEFAULT, id="v3_region_far_outside"),
    row(3, "pct:100,0,10,10", "max", (W, H), DEFAULT, id="v3_pct_region_x_at_100"),
    row(3, "pct:0,100,10,10", "max", (W, H), DEFAULT, id="v3_pct_region_y_at_100"),
    row(3, "pct:0,0,0.01,0.01", "max", (W, H), DEFAULT, id="v3_pct_region_rounds_to_zero"),
    row(2, "1000,0,10,10", "full", (W, H), DEFAULT, id="v2_region_x_at_width"),
    # 3.0 upscaling without ^
    row(3, "full", "1200,", (1000, 1000), DEFAULT, id="v3_w_upscale_without_caret"),
    row(3, "full", ",1200", (1000, 1000), DEFAULT, id="v3_h_upscale_without_caret"),
    row(3, "full", "1200,1200", (1000, 1000), DEFAULT, id="v3_wh_upscale_without_caret"),
    row(3, "full", "pct:150", (1000, 1000), DEFAULT, id="v3_pct_upscale_without_caret"),
    row(3, "full", "pct:200", (1000, 1000), DEFAULT, id="v3_pct_200_without_caret"),
    row(3, "full", "!2000,3000", (1000, 1000), DEFAULT, id="v3_confined_upscale_without_caret"),
    row(3, "full", "!2000,3000", (1000, 1000), TIGHT, id="v3_confined_upscale_without_caret_tight"),
    row(3, "full", "1001,", (W, H), DEFAULT, id="v3_w_one_over"),
    row(3, "full", ",801", (W, H), DEFAULT, id="v3_h_one_over"),
    row(3, "full", "1000,801", (W, H), DEFAULT, id="v3_wh_height_over"),
    row(3, "full", "pct:100.5", (W, H), DEFAULT, id="v3_pct_just_over_100"),
    row(3, "full", "!1001,801", (W, H), DEFAULT, id="v3_confined_box_just_over"),
    row(3, "10,20,300,400", "301,", (W, H), DEFAULT, id="v3_w_over_cropped_region"),
    row(3, "900,700,200,200", "200,200", (W, H), DEFAULT, id="v3_size_over_clipped_region"),
    # outputs above the limits, with ^ (3.0) and without (2.1)
    row(3, "full", "^12001,", (W, H), DEFAULT, id="v3_up_above_max_width"),
    row(3, "full", "^,12001", (W, H), DEFAULT, id="v3_up_above_max_height"),
    row(3, "full", "^,12000", (W, H), DEFAULT, id="v3_up_h_makes_width_too_big"),
    row(3, "full", "^12000,", (W, H), DEFAULT, id="v3_up_above_max_area"),
    row(3, "full", "^7072,7072", (W, H), DEFAULT, id="v3_up_just_above_max_area"),
    row(3, "full", "^pct:1000", (W, H), DEFAULT, id="v3_up_pct_above_limits"),
    row(3, "full", "^999999999,999999999", (W, H), DEFAULT, id="v3_up_absurd"),
    row(3, "full", "501,", (W, H), TIGHT, id="v3_tight_area"),
    row(3, "full", "601,100", (W, H), TIGHT, id="v3_tight_width"),
    row(3, "full", "100,601", (W, H), TIGHT, id="v3_tight_height"),
    row(3, "full", "pct:60", (W, H), TIGHT, id="v3_tight_pct"),
    row(3, "full", "700,", (W, H), Limits(600, None, None), id="v3_width_only_limit"),
    row(3, "full", ",600", (W, H), Limits(600, None, None), id="v3_width_limit_via_h"),
    row(3, "full", ",501", (W, H), Limits(None, 500, None), id="v3_height_only_limit"),
    row(2, "full", "12001,", (W, H), DEFAULT, id="v2_above_max_width"),
    row(2, "full", "1000,12001", (W, H), DEFAULT, id="v2_above_max_height"),
    row(2, "full", "9000,", (W, H), DEFAULT, id="v2_above_max_area"),
    row(2, "full", "pct:1000", (W, H), DEFAULT, id="v2_pct_above_limits"),
    row(2, "full", "full", (W, H), TIGHT, id="v2_full_above_limits"),
    row(2, "full", "1000,800", (W, H), TIGHT, id="v2_wh_above_limits"),
    # zero-pixel outputs
    row(3, "full", "pct:0.1", (W, H), DEFAULT, id="v3_pct_height_rounds_to_zero"),
    row(3, "full", "pct:0.05", (W, H), DEFAULT, id="v3_pct_rounds_to_zero"),
    row(2, "full", "pct:0.05", (W, H), DEFAULT, id="v2_pct_rounds_to_zero"),
]


@pytest.mark.parametrize(("version", "region", "size", "image", "limits"), REFUSED)
def test_resolve_refuses_with_400(version, region, size, image, limits):
    req = parse(version, region, size, "0", "default.jpg")
    assert_400(resolve, req, *image, limits)


def test_region_entirely_outside_is_400_with_a_clear_message():
    req = parse(3, "1000,0,10,10", "max", "0", "default.jpg")
    assert "outside" in assert_400(resolve, req, W, H, DEFAULT).message


def test_upscaling_without_caret_in_v3_is_400_and_names_the_caret():
    req = parse(3, "full", "1200,", "0", "default.jpg")
    assert "^" in assert_400(resolve, req, W, H, DEFAULT).message


def test_resolve_carries_mirror_rotation_quality_and_format_into_the_plan():
    plan = resolve(parse(3, "full", "max", "!22.5", "bitonal.webp"), W, H, DEFAULT)
    assert (plan.mirror, plan.rotation, plan.quality, plan.format) == (True, 22.5, "bitonal", "webp")


@pytest.mark.parametrize(
    ("region", "is_full"),
    [
        row("full", True, id="full"),
        row("0,0,1000,800", True, id="px_whole_image"),
        row("0,0,5000,5000", True, id="px_clipped_to_whole_image"),
        row("pct:0,0,100,100", True, id="pct_whole_image"),
        row("square", False, id="square_of_landscape"),
        row("0,0,999,800", False, id="px_one_short"),
        row("1,0,999,800", False, id="px_offset"),
    ],
)
def test_region_is_full_only_when_the_crop_is_the_whole_image(region, is_full):
    assert plan_for(3, region, "max").region_is_full is is_full


# --------------------------------------------------------------------------- max_size

MAX_SIZES = [
    row((1000, 800), NO_LIMITS, False, (1000, 800), id="no_limits"),
    row((1000, 800), NO_LIMITS, True, (1000, 800), id="no_limits_upscale_stays"),
    row((1000, 800), DEFAULT, False, (1000, 800), id="within_limits"),
    row((1000, 800), DEFAULT, True, (7905, 6324), id="upscale_to_area"),
    row((1000, 800), Limits(600, None, None), False, (600, 480), id="down_to_width"),
    row((1000, 800), Limits(None, 400, None), False, (500, 400), id="down_to_height"),
    row((1000, 800), Limits(None, None, 200_000), False, (500, 400), id="down_to_area"),
    row((1000, 800), Limits(1000, 800, 800_000), True, (1000, 800), id="limits_equal_region"),
    row((1000, 800), Limits(2000, 2000, None), True, (2000, 1600), id="upscale_to_width"),
    row((1000, 800), Limits(5000, 1200, None), True, (1500, 1200), id="upscale_to_height"),
    row((608, 304), Limits(500, None, None), False, (500, 250), id="width_exact_not_off_by_one"),
    row((304, 608), Limits(None, 500, None), False, (250, 500), id="height_exact_not_off_by_one"),
    row((7, 7), Limits(495, None, None), True, (495, 495), id="upscale_width_exact_not_off_by_one"),
    row((10000, 1), Limits(100, None, None), False, (100, 1), id="never_below_one_pixel"),
]


@pytest.mark.parametrize(("region", "limits", "upscale", "expected"), MAX_SIZES)
def test_max_size_is_the_largest_size_within_the_limits(region, limits, upscale, expected):
    assert max_size(*region, limits, upscale=upscale) == expected


@pytest.mark.parametrize("width", range(100, 1300, 7))
def test_max_size_meets_max_width_exactly_when_width_bound(width):
    out_w, out_h = max_size(width, 97, Limits(53, None, None), upscale=True)
    assert out_w == 53
    assert out_h == 97 * 53 // width or out_h == 1


# --------------------------------------------------------------------------- canonical
# columns: version, region, size, rotation, quality.format, (image w, h), limits, canonical

CANONICAL = [
    # 3.0 regions
    row(3, "full", "max", "0", "default.jpg", (W, H), DEFAULT, "full/max/0/default.jpg", id="v3_full_max"),
    row(3, "square", "max", "0", "default.jpg", (W, H), DEFAULT, "100,0,800,800/max/0/default.jpg", id="v3_square"),
    row(3, "square", "max", "0", "default.jpg", (1000, 1000), DEFAULT, "full/max/0/default.jpg", id="v3_sq_of_square"),
    row(3, "pct:10,10,50,50", "max", "0", "default.jpg", (W, H), DEFAULT, "100,80,500,400/max/0/default.jpg",
        id="v3_pct"),
    row(3, "900,700,200,200", "max", "0", "default.jpg", (W, H), DEFAULT, "900,700,100,100/max/0/default.jpg",
        id="v3_clip"),
    row(3, "0,0,1000,800", "max", "0", "default.jpg", (W, H), DEFAULT, "full/max/0/default.jpg", id="v3_px_whole"),
    # 3.0 sizes
    row(3, "full", "500,", "0", "default.jpg", (W, H), DEFAULT, "full/500,400/0/default.jpg", id="v3_w"),
    row(3, "full", "500,300", "0", "default.jpg", (W, H), DEFAULT, "full/500,300/0/default.jpg", id="v3_wh"),
    row(3, "full", "1000,", "0", "default.jpg", (W, H), DEFAULT, "full/max/0/default.jpg", id="v3_w_region_size"),
    row(3, "full", "^pct:100", "0", "default.jpg", (W, H), DEFAULT, "full/max/0/default.jpg", id="v3_up_pct_100"),
    row(3, "full", "^500,", "0", "default.jpg", (W, H), DEFAULT, "full/500,400/0/default.jpg", id="v3_up_w_downscale"),
    row(3, "full", "^1200,", "0", "default.jpg", (W, H), DEFAULT, "full/^1200,960/0/default.jpg", id="v3_up_w"),
    row(3, "full", "^1000,900", "0", "default.jpg", (W, H), DEFAULT, "full/^1000,900/0/default.jpg", id="v3_up_h_only"),
    row(3, "full", "^max", "0", "default.jpg", (W, H), DEFAULT, "full/^7905,6324/0/default.jpg", id="v3_up_max"),
    row(3, "full", "^max", "0", "default.jpg", (W, H), NO_LIMITS, "full/max/0/default.jpg", id="v3_up_max_no_limit"),
    row(3, "full", "max", "0", "default.jpg", (W, H), TIGHT, "full/max/0/default.jpg", id="v3_max_tight"),
    row(3, "full", "500,400", "0", "default.jpg", (W, H), TIGHT, "full/max/0/default.jpg", id="v3_wh_is_tight_max"),
    row(3, "full", "400,", "0", "default.jpg", (W, H), TIGHT, "full/400,320/0/default.jpg", id="v3_w_under_tight"),
    row(3, "full", "^!2000,2000", "0", "default.jpg", (W, H), TIGHT, "full/max/0/default.jpg", id="v3_clamped_is_max"),
    # 3.0 rotation, quality, format
    row(3, "full", "max", "22.5", "default.png", (W, H), DEFAULT, "full/max/22.5/default.png", id="v3_rot_float"),
    row(3, "full", "max", "22.50", "default.png", (W, H), DEFAULT, "full/max/22.5/default.png", id="v3_rot_trailing_0"),
    row(3, "full", "max", "90.0", "default.jpg", (W, H), DEFAULT, "full/max/90/default.jpg", id="v3_rot_int_float"),
    row(3, "full", "max", "090", "default.jpg", (W, H), DEFAULT, "full/max/90/default.jpg", id="v3_rot_leading_0"),
    row(3, "full", "max", ".5", "default.jpg", (W, H), DEFAULT, "full/max/0.5/default.jpg", id="v3_rot_leading_dot"),
    row(3, "full", "max", "0.125", "default.jpg", (W, H), DEFAULT, "full/max/0.125/default.jpg", id="v3_rot_fraction"),
    row(3, "full", "max", "!0", "default.jpg", (W, H), DEFAULT, "full/max/!0/default.jpg", id="v3_mirror"),
    row(3, "full", "max", "!180", "default.jpg", (W, H), DEFAULT, "full/max/!180/default.jpg", id="v3_mirror_180"),
    row(3, "full", "max", "!22.50", "default.jpg", (W, H), DEFAULT, "full/max/!22.5/default.jpg", id="v3_mirror_float"),
    row(3, "full", "max", "360", "default.jpg", (W, H), DEFAULT, "full/max/0/default.jpg", id="v3_rot_360_is_0"),
    row(3, "full", "max", "0", "gray.webp", (W, H), DEFAULT, "full/max/0/gray.webp", id="v3_gray_webp"),
    row(3, "full", "max", "0", "bitonal.pdf", (W, H), DEFAULT, "full/max/0/bitonal.pdf", id="v3_bitonal_pdf"),
    # 2.1
    row(2, "full", "full", "0", "default.jpg", (W, H), DEFAULT, "full/full/0/default.jpg", id="v2_full_full"),
    row(2, "full", "max", "0", "default.jpg", (W, H), DEFAULT, "full/full/0/default.jpg", id="v2_max_is_full"),
    row(2, "full", "max", "0", "default.jpg", (W, H), TIGHT, "full/500,/0/default.jpg", id="v2_max_tight_is_w"),
    row(2, "full", "500,", "0", "default.jpg", (W, H), DEFAULT, "full/500,/0/default.jpg", id="v2_w"),
    row(2, "full", "500,300", "0", "default.jpg", (W, H), DEFAULT, "full/500,300/0/default.jpg", id="v2_wh_distorted"),
    row(2, "full", "1200,", "0", "default.jpg", (W, H), DEFAULT, "full/1200,/0/default.jpg", id="v2_upscaled_w"),
    row(2, "full", "pct:150", "0", "default.jpg", (W, H), DEFAULT, "full/1500,/0/default.jpg", id="v2_upscaled_pct"),
    row(2, "full", "!2000,3000", "0", "default.jpg", (W, H), DEFAULT, "full/2000,/0/default.jpg", id="v2_confined_up"),
    row(2, "full", ",3", "0", "default.jpg", (W, H), DEFAULT, "full/4,/0/default.jpg", id="v2_tiny_h_is_w"),
    row(2, "square", "full", "0", "default.jpg", (W, H), DEFAULT, "100,0,800,800/full/0/default.jpg", id="v2_square"),
    row(2, "pct:10,10,50,50", "250,", "0", "default.jpg", (W, H), DEFAULT, "100,80,500,400/250,/0/default.jpg",
        id="v2_pct"),
    row(2, "full", "full", "!90", "color.png", (W, H), DEFAULT, "full/full/!90/color.png", id="v2_mirror_color"),
    row(2, "full", "full", "22.50", "gray.jpg", (W, H), DEFAULT, "full/full/22.5/gray.jpg", id="v2_rot_float"),
]


@pytest.mark.parametrize(("version", "region", "size", "rotation", "qf", "image", "limits", "expected"), CANONICAL)
def test_canonical_uri_path(version, region, size, rotation, qf, image, limits, expected):
    plan = resolve(parse(version, region, size, rotation, qf), *image, limits)
    assert plan.canonical(version, *image, limits) == expected


@pytest.mark.parametrize(("version", "region", "size", "rotation", "qf", "image", "limits", "expected"), CANONICAL)
def test_canonical_form_is_a_fixed_point(version, region, size, rotation, qf, image, limits, expected):
    """Requesting the canonical path again resolves to the same plan and the same canonical path."""
    first = resolve(parse(version, region, size, rotation, qf), *image, limits)
    again = resolve(parse(version, *expected.split("/")), *image, limits)
    assert crop_and_output(again) == crop_and_output(first)
    assert again.canonical(version, *image, limits) == expected


# Spellings of one request that must share one canonical path.
# columns: version, (image w, h), limits, [(region, size, rotation)...], canonical
EQUIVALENT = [
    row(
        3,
        (W, H),
        DEFAULT,
        [("full", s, "0") for s in ("pct:50", "500,", ",400", "500,400", "!500,500", "^500,", "^pct:50", "!500,400")],
        "full/500,400/0/default.jpg",
        id="v3_half_size_spellings",
    ),
    row(
        3,
        (W, H),
        DEFAULT,
        [("full", s, "0") for s in ("max", "pct:100", "1000,", ",800", "1000,800", "!1000,800", "^1000,")],
        "full/max/0/default.jpg",
        id="v3_full_size_spellings",
    ),
    row(
        3,
        (W, H),
        DEFAULT,
        [(r, "max", "0") for r in ("full", "0,0,1000,800", "0,0,5000,5000", "pct:0,0,100,100", "pct:0,0,200,200")],
        "full/max/0/default.jpg",
        id="v3_full_region_spellings",
    ),
    row(
        3,
        (W, H),
        DEFAULT,
        [(r, "max", "0") for r in ("pct:10,10,50,50", "100,80,500,400", "pct:10.0,10.0,50.0,50.0")],
        "100,80,500,400/max/0/default.jpg",
        id="v3_region_pct_and_px",
    ),
    row(
        3,
        (W, H),
        DEFAULT,
        [(r, "max", "0") for r in ("square", "100,0,800,800", "pct:10,0,80,100")],
        "100,0,800,800/max/0/default.jpg",
        id="v3_square_spellings",
    ),
    row(
        3,
        (W, H),
        DEFAULT,
        [("full", "^1200,", "0"), ("full", "^,960", "0"), ("full", "^pct:120", "0"), ("full", "^!1200,960", "0")],
        "full/^1200,960/0/default.jpg",
        id="v3_upscale_spellings",
    ),
    row(
        3,
        (W, H),
        TIGHT,
        [("full", s, "0") for s in ("max", "^max", "500,", "pct:50", "^!5000,5000", "!900,900")],
        "full/max/0/default.jpg",
        id="v3_tight_max_spellings",
    ),
    row(
        3,
        (W, H),
        DEFAULT,
        [("full", "max", r) for r in ("90", "90.0", "090", "90.000")],
        "full/max/90/default.jpg",
        id="v3_rotation_spellings",
    ),
    row(
        3,
        (W, H),
        DEFAULT,
        [("full", "max", r) for r in ("0", "360", "0.0", "000")],
        "full/max/0/default.jpg",
        id="v3_no_rotation_spellings",
    ),
    row(
        2,
        (W, H),
        DEFAULT,
        [("full", s, "0") for s in ("full", "max", "pct:100", "1000,", ",800", "1000,800", "!1000,800")],
        "full/full/0/default.jpg",
        id="v2_full_size_spellings",
    ),
    row(
        2,
        (W, H),
        DEFAULT,
        [("full", s, "0") for s in ("pct:50", "500,", ",400", "500,400", "!500,500")],
        "full/500,/0/default.jpg",
        id="v2_half_size_spellings",
    ),
    row(
        2,
        (W, H),
        DEFAULT,
        [("full", s, "0") for s in ("pct:150", "1500,", ",1200", "1500,1200", "!1500,5000")],
        "full/1500,/0/default.jpg",
        id="v2_upscale_spellings",
    ),
]


@pytest.mark.parametrize(("version", "image", "limits", "spellings", "expected"), EQUIVALENT)
def test_different_spellings_give_the_same_canonical_path(version, image, limits, spellings, expected):
    requests = [parse(version, region, size, rotation, "default.jpg") for region, size, rotation in spellings]
    plans = [resolve(req, *image, limits) for req in requests]
    canonicals = {plan.canonical(version, *image, limits) for plan in plans}
    assert canonicals == {expected}
