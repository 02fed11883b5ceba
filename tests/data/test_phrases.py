"""Rule-based noun chunks for the local and object alignment levels."""
from rsvlm_jax.data import phrases


def test_counts_modifiers_and_compounds():
  got = phrases.extract_phrases("Three white planes are parked near a large storage tank beside the runway.")
  assert got == ["three white planes", "large storage tank", "runway"]


def test_plural_compound_and_fallback_noun():
  got = phrases.extract_phrases("Many cars in two parking lots next to a warehouse.")
  assert got == ["many cars", "two parking lots", "warehouse"]


def test_layout_words_are_not_phrases_and_duplicates_collapse():
  got = phrases.extract_phrases("In the center of the image there is a river and a river.")
  assert got == ["river"]


def test_max_phrases():
  cap = "a car, a bus, a ship, a boat, a tree, a road, a lake, a pond, a beach"
  assert len(phrases.extract_phrases(cap, max_phrases=4)) == 4


def test_object_phrase():
  assert phrases.object_phrase("storage_tank") == "storage tank"
  assert phrases.object_phrase("ship", 3) == "three ships"
  assert phrases.object_phrase("car", 40) == "many cars"
