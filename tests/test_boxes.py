"""rsvlm_jax/boxes.py: PaliGemma location tokens round-trip, and every box form of RS-GPT4V / GeoChat text."""
import random

import pytest

from rsvlm_jax import boxes

HALF_BIN = 0.5 / (boxes.NUM_BINS - 1)


def test_location_tokens_round_trip_within_half_a_bin():
  rng = random.Random(0)
  for _ in range(2000):
    width, height = rng.randint(1, 4000), rng.randint(1, 4000)
    y = sorted(rng.uniform(0, height) for _ in range(2))
    x = sorted(rng.uniform(0, width) for _ in range(2))
    box = (y[0], x[0], y[1], x[1])
    text = boxes.encode(box, (width, height))
    assert boxes.LOCATION.fullmatch(text[:9]) and len(text) == 4 * 9
    back = boxes.decode(text, (width, height))
    for got, want, side in zip(back, box, (height, width, height, width)):
      assert abs(got - want) <= HALF_BIN * side + 1e-9


def test_location_token_order_and_values():
  """(ymin, xmin, ymax, xmax), bin = round(v * 1023): PaliGemma's layout."""
  assert boxes.encode((0.0, 0.5, 1.0, 0.25 + 0.5)) == "<loc0000><loc0512><loc1023><loc0767>"
  assert boxes.encode((10, 0, 20, 40), image_size=(40, 20)) == "<loc0512><loc0000><loc1023><loc1023>"
  assert boxes.decode("dog <loc0000><loc1023><loc0512> <loc1023> cat") == pytest.approx((0, 1, 512 / 1023, 1))
  assert boxes.encode((-5, 0, 30, 10), image_size=(10, 20)) == "<loc0000><loc0000><loc1023><loc1023>"  # Clipped.


def test_location_token_errors():
  with pytest.raises(ValueError, match="no box of four location tokens"):
    boxes.decode("<loc0001><loc0002><loc0003>")
  with pytest.raises(ValueError, match="beyond <loc1023>"):
    boxes.decode("<loc0001><loc0002><loc0003><loc1024>")
  with pytest.raises(ValueError, match="inverted box"):
    boxes.encode((0.5, 0.0, 0.4, 1.0))
  with pytest.raises(ValueError, match="four values"):
    boxes.encode((0.1, 0.2, 0.3))


@pytest.mark.parametrize("text, size, want", [
    ("{<10><20><30><40>}", None, (0.2, 0.1, 0.4, 0.3)),  # GeoChat, 0-100, x1 y1 x2 y2.
    ("{<10><20><30><40>|<45>}", None, (0.2, 0.1, 0.4, 0.3)),  # GeoChat with an angle.
    ("<box>(100,200),(300,400)</box>", None, (0.2, 0.1, 0.4, 0.3)),  # Qwen-VL, 0-1000.
    ("[0.1, 0.2, 0.3, 0.4]", None, (0.2, 0.1, 0.4, 0.3)),  # Unit.
    ("[80, 160, 240, 320]", (800, 800), (0.2, 0.1, 0.4, 0.3)),  # Pixels.
    ("<loc0205><loc0102><loc0409><loc0307>", None,
     (205 / 1023, 102 / 1023, 409 / 1023, 307 / 1023)),  # PaliGemma.
])
def test_parse_any_reads_every_form(text, size, want):
  assert boxes.parse_any(f"The tank is at {text}.", size) == [pytest.approx(want)]


def test_parse_any_keeps_the_order_of_appearance_and_the_rs_gpt4v_parser_is_the_same():
  text = "<loc0000><loc0000><loc1023><loc1023> then {<10><20><30><40>}"
  assert boxes.parse_any(text) == [pytest.approx((0, 0, 1, 1)), pytest.approx((0.2, 0.1, 0.4, 0.3))]
  from rsvlm_datasets import rs_gpt4v_format  # pylint: disable=g-import-not-at-top
  assert rs_gpt4v_format.find_boxes is boxes.find_boxes and rs_gpt4v_format.parse_boxes is boxes.parse_boxes
  with pytest.raises(ValueError, match="needs the image size"):
    boxes.parse_any("[80, 160, 240, 320]")
